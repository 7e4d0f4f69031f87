"""Run the examples in the documentation, so the docs cannot rot (issue 17 item 1).

Sybil parses each Markdown page; its examples run in order, in one temporary directory per page
(the page's working directory), with one Python namespace per page:

* ```` ```python ```` blocks run with sybil's Python parser (the page's namespace, cwd = the
  page's directory). ``<!-- invisible-code-block: python -->`` comments set up what a snippet
  assumes without showing it; ``<!-- not-run: REASON -->`` skips the next example and must say
  why. ``REPOSITORY`` (a ``Path``) is the checkout, for a page that links a tree such as
  ``interop/`` or ``fuzz/`` into its directory.
* ```` ```console ```` blocks: each ``$ `` line (with ``\\`` continuations) is a bash command;
  the lines after it up to the next ``$ `` are its expected output, compared line by line with
  ``...`` matching anything (a line that is only ``...`` matches any number of lines). A
  command whose expected output starts with ``error:`` or ``FAILED`` must exit non-zero; any
  other must exit 0 (``echo $?`` shows other codes). Long-running commands (``grpcsec serve``,
  ``grpcsec exporter``, agents without ``--once``, the ``pebble`` ACME test CA) are started
  in the background and the
  example waits until their expected first line appears; they are stopped at the page's end.
* ```` ```sh ```` (``bash``, ``shell``) blocks are scripts: run whole with ``bash -euo
  pipefail``, they must exit 0.
* any fenced block whose info string has ``title="PATH"`` is written to that file first (a
  config, a policy), so the page shows it and the next command uses it.
* ports: every ``HOST:PORT`` with a port of 1024 or more in a page (Python blocks included) is
  replaced, consistently across the page, by a free port on this machine, so pages do not
  collide with each other.

Nothing from the page runs outside its temporary directory, and nothing listens beyond
127.0.0.1 and localhost (a page's ``0.0.0.0``/``[::]`` listeners are rewritten to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

SESSION = "_docs_session"
REPOSITORY = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 120.0
READY_TIMEOUT = 30.0
PORT = re.compile(r"(?<![\w.])((?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]|\[::\])?:)(\d{4,5})\b")
TITLE = re.compile(r'title="([^"]+)"')
LONG_RUNNING = re.compile(
    r"^\s*(?:\S+=\S+\s+)*(?:grpcsec\s+(?:serve|exporter|renew|acme\s+renew)\b|pebble(?:\s|$))"
)


@dataclass
class PageSession:
    """One page's working directory, port map and background processes."""

    directory: Path
    ports: dict[str, int] = field(default_factory=dict)
    background: list[subprocess.Popen[str]] = field(default_factory=list)

    def localize(self, text: str) -> str:
        """Map the page's ports to free ones and its wildcard listeners to loopback."""

        def port(match: re.Match[str]) -> str:
            host, number = match.group(1), match.group(2)
            if int(number) < 1024:
                return match.group(0)
            if number not in self.ports:
                self.ports[number] = _free_port()
            if host in {"0.0.0.0:", "[::]:"}:
                host = "127.0.0.1:"
            return f"{host}{self.ports[number]}"

        return PORT.sub(port, text)

    def close(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def session(example: Example) -> PageSession:
    found = example.namespace.get(SESSION)
    if not isinstance(found, PageSession):
        raise TypeError("the page's session is set by run_page")
    return found


def environment() -> dict[str, str]:
    """What the page's commands see: this interpreter's grpcsec first on PATH, no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRPCSEC_", "PYTEST"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "COLUMNS": "120", "PYTHONWARNINGS": "error"})
    return env


# -- expected output --------------------------------------------------------------------------
def _line_matches(expected: str, actual: str) -> bool:
    parts = [re.escape(part) for part in expected.split("...")]
    return re.fullmatch(".*".join(parts), actual.rstrip()) is not None


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` against ``actual``, ``...`` as a wildcard within a line, and a line of only
    ``...`` (or ``…``) as any number of lines."""
    return not expected or _matches(expected, actual)


def _matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    head, *rest = expected
    if head.strip() in {"...", "…"}:
        return any(_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and _line_matches(head, actual[0]) and _matches(rest, actual[1:])


@dataclass(frozen=True)
class Command:
    text: str
    expected: list[str]

    @property
    def must_fail(self) -> bool:
        first = next((line for line in self.expected if line.strip()), "")
        return first.startswith(("error:", "FAILED"))


def commands(block: str) -> Iterator[Command]:
    """The ``$ `` commands of a console block, each with its expected output lines."""
    lines = block.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            raise ValueError(f"console block line without a '$ ' prompt: {line!r}")
        text = line[2:]
        while text.rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text.rstrip()[:-1] + " " + lines[index].strip()
        index += 1
        expected = []
        while index < len(lines) and not lines[index].startswith("$ "):
            expected.append(lines[index])
            index += 1
        yield Command(text, expected)


# -- evaluators -------------------------------------------------------------------------------
def ready_timeout() -> float:
    """Seconds a background command has to print its first line (a function: tests shorten it)."""
    return READY_TIMEOUT


def _start_background(page: PageSession, command: Command) -> None:
    process = subprocess.Popen(  # noqa: S602 (a documented shell command, in the page's tmp dir)
        command.text, shell=True, executable="/bin/bash", cwd=page.directory, env=environment(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    page.background.append(process)
    if not command.expected:
        raise AssertionError(f"{command.text}: a long-running command needs its first line shown")
    wanted = page.localize(command.expected[0])
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:  # drains the pipe for the process's whole life
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if _line_matches(wanted, seen[-1]):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(ready_timeout()) or not any(_line_matches(wanted, x) for x in seen):
        raise AssertionError(f"{command.text}: never printed {wanted!r}; got {seen[-20:]!r}")


def evaluate_console(example: Example) -> str | None:
    page = session(example)
    for command in commands(str(example.parsed)):
        localized = Command(page.localize(command.text), command.expected)
        if LONG_RUNNING.match(localized.text) and "--once" not in localized.text:
            _start_background(page, localized)
            continue
        result = subprocess.run(  # noqa: S602 (see above)
            localized.text, shell=True, executable="/bin/bash", cwd=page.directory,
            env=environment(), capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
            check=False,
        )  # fmt: skip
        output = (result.stdout + result.stderr).splitlines()
        expected = [page.localize(line) for line in command.expected]
        if localized.must_fail == (result.returncode == 0):
            return (
                f"$ {command.text}\nexit code {result.returncode} "
                f"({'expected a failure' if localized.must_fail else 'expected 0'})\n"
                + "\n".join(output[-30:])
            )
        if not output_matches(expected, output):
            return (
                f"$ {command.text}\nexpected:\n"
                + "\n".join(expected)
                + "\ngot:\n"
                + "\n".join(output[-60:])
            )
    return None


def evaluate_file(example: Example) -> str | None:
    page = session(example)
    title = TITLE.search(str(example.region.lexemes.get("arguments", "")))
    if title is None:
        return None
    target = page.directory / title.group(1)
    if not target.resolve().is_relative_to(page.directory.resolve()):
        return f"{title.group(1)}: a page may only write inside its own directory"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page.localize(str(example.parsed)))
    return None


class TitledFileParser(CodeBlockParser):
    """Any fenced block with ``title="PATH"`` in its info string: written to PATH."""

    def __init__(self) -> None:
        super().__init__(language="(any, with a title)", evaluator=evaluate_file)

    def __call__(self, document: Any) -> Iterator[Any]:
        for region in self.lexers(document):
            if TITLE.search(str(region.lexemes.get("arguments", ""))):
                region.parsed = region.lexemes["source"]
                region.evaluator = evaluate_file
                yield region


def evaluate_script(example: Example) -> str | None:
    """A ``sh``/``bash`` block: one script, run with ``bash -euo pipefail``, must exit 0."""
    page = session(example)
    script = page.localize(str(example.parsed))
    result = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", script], cwd=page.directory, env=environment(),
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        return f"script exited {result.returncode}:\n{script}\n{result.stdout}{result.stderr}"
    return None


class LanguageParser(CodeBlockParser):
    """``console`` blocks (:func:`evaluate_console`)."""

    def __init__(self) -> None:
        super().__init__(language="console", evaluator=evaluate_console)


class ScriptParser(CodeBlockParser):
    """Shell scripts without prompts (:func:`evaluate_script`), one parser per fence name."""

    def __init__(self, language: str) -> None:
        super().__init__(language=language, evaluator=evaluate_script)


class PagePythonEvaluator:
    """Python blocks run like sybil's own evaluator, with the page's ports mapped first, so a
    snippet dials the server a console block started (``localhost:50051`` means the same port
    in both)."""

    def __call__(self, example: Example) -> None:
        source = session(example).localize(str(example.parsed))
        offset = example.line + example.parsed.line_offset
        code = compile("\n" * offset + source, example.path, "exec", dont_inherit=True)
        exec(code, example.namespace)  # noqa: S102 (the page's own example)
        example.namespace.pop("__builtins__", None)


class PagePythonParser(PythonCodeBlockParser):
    """sybil's Python parser (code blocks, invisible blocks, doctests) with
    :class:`PagePythonEvaluator` for code blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.codeblock_parser = self.codeblock_parser_class("python", PagePythonEvaluator())


PARSERS = [
    TitledFileParser(),
    LanguageParser(),
    *(ScriptParser(name) for name in ("sh", "bash", "shell")),
    PagePythonParser(),
]
SYBIL = Sybil(parsers=PARSERS, patterns=["*.md"], path="../..")


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->")


def _skips(text: str) -> list[int]:
    """Offsets of ``<!-- not-run: REASON -->`` comments; each skips the next example."""
    found = []
    for match in NOT_RUN.finditer(text):
        if len(match.group(1).strip()) < 10:
            raise ValueError(f"not-run needs a reason: {match.group(0)!r}")
        found.append(match.start())
    return found


@contextmanager
def _default_loop() -> Iterator[None]:
    """A fresh default event loop for the page, as a new Python process has: module-level code
    such as ``grpc.aio.server()`` must not depend on what earlier tests did to asyncio's
    policy (``asyncio.run`` leaves the main thread with no default loop)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def run_page(path: Path) -> None:
    """Evaluate every example of one page, in order, in a fresh directory."""
    document = SYBIL.parse(path)
    with tempfile.TemporaryDirectory(prefix="grpcsec-docs-") as directory:
        page = PageSession(Path(directory))
        document.namespace[SESSION] = page
        document.namespace["REPOSITORY"] = REPOSITORY
        skips = _skips(document.text)
        try:
            with _cwd(page.directory), _default_loop():
                for example in document:
                    if skips and skips[0] < example.start:
                        skips.pop(0)  # this example is not run: the comment says why
                        continue
                    example.evaluate()
        finally:
            page.close()
