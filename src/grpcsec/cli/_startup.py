"""SIGINT and SIGTERM while a long-running command is still starting.

``grpcsec serve`` installs its graceful handlers (finish in-flight calls, exit 0) only once the
server is listening. Before that, inside :func:`stop_during_startup`, a stop request interrupts
whatever start-up is doing (parsing a large bundle, fetching a JWKS, binding the port) at the
next Python instruction, prints one line on stderr and exits with ``128 + signal`` (130 for
SIGINT, 143 for SIGTERM), the status a shell reports for a process ended by that signal.
Nothing is being served yet, so nothing needs draining.

Not covered: a signal during interpreter start-up and imports, before the command runs
(SIGTERM then ends the process by its default action; SIGINT may show Python's
``KeyboardInterrupt`` traceback); and a single C call that does not return to Python, which is
why each slow step is bounded elsewhere (``MAX_TRUST_CERTIFICATES`` for grpc core's root
loading, a timeout for a JWKS fetch).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import typer

__all__ = ["STOP_SIGNALS", "stop_during_startup"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopRequested(BaseException):
    """A stop signal during start-up. A ``BaseException``, like ``KeyboardInterrupt``, so that
    no ``except Exception`` on the way (a retry loop, an error mapper) swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested(signum)


@contextlib.contextmanager
def stop_during_startup(command: str) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM end the command at once with ``128 + signal``; handlers
    installed inside the block (the graceful ones) take over until they are restored. The
    previous handlers are restored on exit. Main thread only (a :mod:`signal` rule)."""
    previous = {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}
    try:
        yield
    except _StopRequested as stop:
        name = signal.Signals(stop.signum).name
        sys.stderr.write(f"grpcsec {command}: stopped by {name} before it was ready\n")
        sys.stderr.flush()
        raise typer.Exit(128 + stop.signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
