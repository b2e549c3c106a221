"""Wall-clock limits on calls into agent code (setup, run_step, destroy), as the leaderboard's
watchdogs impose them: a call still running after its limit raises :class:`CallTimeout` in the
caller, the runner records the route as the leaderboard records a timed-out agent, and the run
goes on. Implemented with ``SIGALRM`` (a few microseconds per call, no thread per tick); where
that is unavailable (off the main thread, or a platform without it) calls run without a limit."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from harness.errors import HarnessError

DEFAULT_AGENT_TIMEOUT_S = 300.0  # [s] the leaderboard evaluator's default --timeout


class CallTimeout(HarnessError):
    """A call into agent code ran past its time limit."""


def limits_available() -> bool:
    """Whether :func:`time_limit` can enforce limits here (main thread with SIGALRM)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the body once it has run ``seconds`` [s] (None or <= 0: no
    limit). Not re-entrant: an inner limit replaces an outer one for its duration."""
    if seconds is None or seconds <= 0 or not limits_available():
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise CallTimeout(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
