"""Run grpcsec's fuzz targets under atheris (libFuzzer); see docs/fuzzing.md.

    python fuzz/run.py [TARGET ...] [--seconds N] [--runs N] [--log-dir DIR] [--work-dir DIR]
    python fuzz/run.py TARGET --reproduce FILE      # run one saved input, show the traceback

Each target runs in its own process (concurrently when several are named), starting from the
seeds ``seeds.py`` writes into ``fuzz/corpus/<target>/`` (new interesting inputs land there too)
with the dictionary ``fuzz/dicts/<target>.dict``; a crashing or hanging input is saved as
``fuzz/artifacts/<target>/crash-...`` / ``timeout-...``. The exit status is 0 only when every
target ran its time or run count without a crash or a hang. A summary (executions, execs/s,
coverage, features, corpus size, crashes) is printed per target from libFuzzer's own output.

Internally the same file is the worker: ``run.py --worker TARGET -- LIBFUZZER_ARGS`` imports the
target under atheris' instrumentation and hands control to libFuzzer.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "fuzz"
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from fuzz import TARGETS  # noqa: E402 (after the path set-up above)

PER_INPUT_TIMEOUT = 10
"""Seconds one input may take before libFuzzer calls it a hang (generous: CI machines are busy)."""
MAX_LEN = {"policy": 8192, "pem": 16384, "bearer": 8192}
_STATS = re.compile(r"#(\d+)\s+(?:pulse|DONE|NEW|REDUCE|INITED)\s.*?cov: (\d+) ft: (\d+)")
_CORPUS = re.compile(r"corp: (\d+)/(\S+)")
_EXEC_S = re.compile(r"exec/s: (\d+)")


def _worker(target: str, libfuzzer_args: list[str]) -> None:
    import atheris  # noqa: PLC0415 (only the worker needs it)

    with atheris.instrument_imports(include=["grpcsec", "jwt", "fuzz"]):
        module = importlib.import_module(f"fuzz.{target}")
    atheris.Setup([sys.argv[0], *libfuzzer_args], module.check)
    atheris.Fuzz()


def _reproduce(target: str, path: Path) -> int:
    module = importlib.import_module(f"fuzz.{target}")
    module.check(path.read_bytes())
    print(f"{target}: {path} ran without a crash")
    return 0


def _dictionary(target: str, work: Path) -> Path:
    """The tracked ``dicts/<target>.dict`` plus, for ``pem``, the private-key armour lines,
    written under ``work/generated`` so that no tracked file looks like it holds a key."""
    text = (HERE / "dicts" / f"{target}.dict").read_text()
    if target == "pem":
        key = "PRIVATE" + " KEY"
        kinds = ("", "EC ", "RSA ", "ENCRYPTED ")
        text += "".join(f'"-----BEGIN {kind}{key}-----"\n' for kind in kinds)
        text += f'"-----END {key}-----"\n'
    path = work / "generated" / f"{target}.dict"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _command(target: str, work: Path, seconds: int | None, runs: int | None) -> list[str]:
    from fuzz.seeds import write_seeds  # noqa: PLC0415 (imports grpcsec: not in the worker)

    corpus = work / "corpus" / target
    artifacts = work / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    write_seeds(target, corpus)
    args = [
        str(corpus),
        f"-artifact_prefix={artifacts}/",
        f"-timeout={PER_INPUT_TIMEOUT}",
        f"-max_len={MAX_LEN[target]}",
        "-print_final_stats=1",
        f"-dict={_dictionary(target, work)}",
    ]
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    if runs is not None:
        args.append(f"-runs={runs}")
    return [sys.executable, str(Path(__file__).resolve()), "--worker", target, "--", *args]


def summarize(target: str, output: str, returncode: int, elapsed: float) -> dict[str, object]:
    """The figures libFuzzer printed, as one dict (``None`` where it printed none)."""
    last = _STATS.findall(output)
    corpus = _CORPUS.findall(output)
    rates = _EXEC_S.findall(output)
    done = re.search(r"stat::number_of_executed_units: (\d+)", output)
    executions = int(done.group(1)) if done else (int(last[-1][0]) if last else None)
    crashes = re.findall(r"Test unit written to (\S+)", output)
    return {
        "target": target,
        "exit": returncode,
        "seconds": round(elapsed, 1),
        "executions": executions,
        "execs_per_s": round(executions / elapsed, 1) if executions and elapsed else None,
        "libfuzzer_last_exec_s": int(rates[-1]) if rates else None,
        "coverage": int(last[-1][1]) if last else None,
        "features": int(last[-1][2]) if last else None,
        "corpus_units": int(corpus[-1][0]) if corpus else None,
        "corpus_size": corpus[-1][1] if corpus else None,
        "artifacts": crashes,
    }


def main(argv: list[str]) -> int:
    if "--worker" in argv:
        split = argv.index("--")
        _worker(argv[argv.index("--worker") + 1], argv[split + 1 :])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], metavar="TARGET")
    parser.add_argument("--seconds", type=int, default=None, help="Run each target this long.")
    parser.add_argument("--runs", type=int, default=None, help="Or this many inputs each.")
    parser.add_argument("--reproduce", type=Path, default=None, help="Run one saved input.")
    parser.add_argument("--log-dir", type=Path, default=None, help="Keep each target's log here.")
    parser.add_argument(
        "--work-dir", type=Path, default=HERE, help="Where corpus/ and artifacts/ go (fuzz/)."
    )
    options = parser.parse_args(argv)
    targets = options.targets or list(TARGETS)
    if options.reproduce is not None:
        return _reproduce(targets[0], options.reproduce)
    if options.seconds is None and options.runs is None:
        options.seconds = 60
    started = time.monotonic()
    processes = {}
    for target in targets:
        command = _command(target, options.work_dir.resolve(), options.seconds, options.runs)
        processes[target] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    failed = 0
    for target, process in processes.items():
        output, _ = process.communicate()
        figures = summarize(target, output, process.returncode, time.monotonic() - started)
        if options.log_dir is not None:
            options.log_dir.mkdir(parents=True, exist_ok=True)
            (options.log_dir / f"{target}.log").write_text(output)
        if process.returncode != 0:
            failed += 1
            print(output[-4000:], file=sys.stderr)
        print(json.dumps(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
