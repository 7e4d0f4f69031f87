"""MkDocs hooks for grpcsec's documentation site (``mkdocs.yml`` names this file).

Three kinds of page are generated at build time, so they cannot drift from the code:

* ``reference/cli.md``: every command's ``--help``, read from the Typer app;
* ``reference/api/<package>.md``: one mkdocstrings page per package with an ``__all__``
  (a new public package appears without editing anything);
* ``repo/<path>``: files outside ``docs/`` that pages link to (examples, deploy kit,
  SECURITY.md...), copied in so those links work on the site and on GitHub alike.

Links in pages that climb out of ``docs/`` are rewritten to the ``repo/`` copies; a link to a
file that does not exist is left alone, so ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path
from typing import Any

import typer
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "grpcsec"
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")
REPO_PREFIX = "repo"


def public_packages() -> list[str]:
    """Dotted names of grpcsec's packages whose ``__init__`` defines ``__all__`` (not the CLI,
    which has its own reference)."""
    found = []
    for init in sorted(SRC.rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        dotted = ".".join(init.parent.relative_to(SRC.parent).parts)
        if "__all__" in names and dotted != "grpcsec.cli":
            found.append(dotted)
    return found


def api_page(package: str) -> str:
    return (
        f"# `{package}`\n\n"
        f"Generated from the docstrings of the names in `{package}.__all__`.\n\n"
        f"::: {package}\n"
    )


def _context(command: Any, path: list[str]) -> Any:  # noqa: ANN401 (Typer's own click)
    # Typer carries its own copy of click, so its classes are reached through the command.
    return command.context_class(command, info_name=" ".join(path), terminal_width=100)


def _help_of(command: Any, path: list[str]) -> str:  # noqa: ANN401
    """Plain-text help (click's layout): Rich's panels are for terminals, not pages."""
    typer.core.HAS_RICH = False  # read on every help call; the site build is its own process
    help_text: str = command.get_help(_context(command, path))
    return help_text


def cli_page() -> str:
    """The ``--help`` of every command and sub-command, in order."""
    from grpcsec.cli import app  # noqa: PLC0415 (imported by the build only)

    root = typer.main.get_command(app)
    parts = [
        "# Command-line reference\n",
        (
            "Generated from the `grpcsec` Typer app at build time; [cli.md](../cli.md) explains "
            "the shared flags, exit codes and `--json`.\n"
        ),
    ]

    def walk(command: Any, path: list[str], depth: int) -> None:  # noqa: ANN401
        title = " ".join(path)
        parts.append(
            f"{'#' * min(depth, 4)} `{title}`\n\n```text\n{_help_of(command, path)}\n```\n"
        )
        if hasattr(command, "list_commands"):
            context = _context(command, path)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], depth + 1)

    walk(root, ["grpcsec"], 2)
    return "\n".join(parts)


def _outside_target(page_src: str, link: str, docs_dir: Path) -> str | None:
    """The repository path a relative link points to, when it leaves ``docs/``."""
    if "://" in link or link.startswith(("/", "mailto:")):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(page_src), link))
    if not joined.startswith("../"):
        return None
    target = (docs_dir / joined).resolve()
    try:
        return target.relative_to(ROOT).as_posix()
    except ValueError:
        return None


def on_files(files: Files, config: MkDocsConfig, **_: object) -> Files:
    docs_dir = Path(config.docs_dir)
    generated = {"reference/cli.md": cli_page()}
    for package in public_packages():
        generated[f"reference/api/{package}.md"] = api_page(package)
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    # Files outside docs/ that some page links to.
    for page in [f for f in files if f.src_uri.endswith(".md") and f.abs_src_path]:
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            target = _outside_target(page.src_uri, match.group(2), docs_dir)
            if target is None or not (ROOT / target).is_file():
                continue
            uri = f"{REPO_PREFIX}/{target}" + ("" if target.endswith(".md") else ".md")
            if files.get_file_from_path(uri) is not None:
                continue
            source = (ROOT / target).read_text(encoding="utf-8")
            if not target.endswith(".md"):
                language = {"py": "python", "go": "go", "yml": "yaml"}.get(
                    target.rsplit(".", 1)[-1], ""
                )
                source = f"# `{target}`\n\n```{language}\n{source}\n```\n"
            files.append(File.generated(config, uri, content=source))
    return files


def _repo_path(page_src: str, link: str, docs_dir: Path) -> str | None:
    """The repository path of a relative link: from a docs page, or from a ``repo/`` copy."""
    if "://" in link or link.startswith(("/", "mailto:")):
        return None
    if page_src.startswith(f"{REPO_PREFIX}/"):
        origin = page_src[len(REPO_PREFIX) + 1 :].removesuffix(".md")
        if not page_src.removesuffix(".md").endswith((".py", ".go", ".json", ".yml", ".yaml")):
            origin = page_src[len(REPO_PREFIX) + 1 :]
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(origin), link))
        return None if joined.startswith("../") else joined
    return _outside_target(page_src, link, docs_dir)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: object) -> str:
    docs_dir = Path(config.docs_dir)
    try:
        docs_prefix = docs_dir.resolve().relative_to(ROOT).as_posix() + "/"
    except ValueError:  # a copy of the docs elsewhere (tests): no repository links resolve
        return markdown
    depth = page.file.src_uri.count("/")

    def rewrite(match: re.Match[str]) -> str:
        target = _repo_path(page.file.src_uri, match.group(2), docs_dir)
        if target is None or not (ROOT / target).is_file():
            return match.group(0)
        if target.startswith(docs_prefix):
            site = target[len(docs_prefix) :]
        else:
            site = f"{REPO_PREFIX}/{target}" + ("" if target.endswith(".md") else ".md")
        if site == page.file.src_uri:
            return match.group(0)
        return f"{match.group(1)}{'../' * depth}{site}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(rewrite, markdown)
