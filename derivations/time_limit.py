"""A per-step time limit for the checker: a step that runs past it is *undecided*, with the reason.

The symbolic side is pure Python (SymPy) and can spin for minutes on a large model (``vectors: z = 10``). The limit is
a real-time interval timer (``setitimer(ITIMER_REAL)``) whose ``SIGALRM`` handler raises :class:`StepTimeout` in the
main thread, so the step stops wherever it is and nothing else of the run is lost.

Where it holds, and where it does not:

* POSIX systems (``setitimer``; tested on Linux), in the main thread: enforced. Python runs signal handlers between
  bytecodes, so a single long operation in C (one huge integer power, one large NumPy call) finishes before the step
  stops; the LaTeX reader's limits (:mod:`.latex.limits`) keep the inputs that would make such operations out.
* Another thread, or a system without ``setitimer`` (Windows): not enforced; :func:`limit_enforceable` says so and
  steps run to completion.

An interval timer armed by someone else (pytest-timeout in ``signal`` mode, for instance) is respected: the earlier of
the two deadlines fires first, that handler is called at its time, and the other timer is re-armed afterwards.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import sympy

from .checker import Checker, Step, StepResult
from .model import Model, ModelError

__all__ = ["StepTimeout", "check_step_in_time", "limit_enforceable", "time_limit", "undecided_result"]


class StepTimeout(BaseException):
    """Raised inside a step that ran past its time limit. A ``BaseException``, so that the ``except Exception``
    handlers inside SymPy and the checker do not swallow it."""


def limit_enforceable() -> bool:
    """Whether :func:`time_limit` can stop a computation here (POSIX ``setitimer``, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[bool]:
    """Raise :class:`StepTimeout` in the body once ``seconds`` have passed. Yields whether the limit is enforced
    (``False`` with ``seconds`` None or <= 0, off the main thread, or without ``setitimer``)."""
    if not seconds or seconds <= 0 or not limit_enforceable():
        yield False
        return
    start = time.monotonic()
    deadline = start + seconds
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, 0)
    previous_deadline = start + previous_delay if previous_delay > 0 else None
    fired_previous = False

    def on_alarm(signum, frame):
        nonlocal fired_previous
        if time.monotonic() >= deadline - 1e-3 or previous_deadline is None:
            raise StepTimeout(seconds)
        # the other timer's deadline came first: hand it its signal, keep ours running
        fired_previous = True
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3))
        if callable(previous_handler):
            previous_handler(signum, frame)

    signal.signal(signal.SIGALRM, on_alarm)
    first = deadline if previous_deadline is None else min(deadline, previous_deadline)
    signal.setitimer(signal.ITIMER_REAL, max(first - start, 1e-3))
    def restore() -> None:  # idempotent: may run again if the alarm lands while it runs
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler if previous_handler is not None else signal.SIG_DFL)
        if previous_deadline is not None and not fired_previous:
            signal.setitimer(signal.ITIMER_REAL, max(previous_deadline - time.monotonic(), 1e-3), previous_interval)
        elif previous_deadline is not None and previous_interval > 0:
            signal.setitimer(signal.ITIMER_REAL, previous_interval, previous_interval)

    try:
        yield True
    finally:
        while True:
            try:
                restore()
                break
            except StepTimeout:  # the deadline passed after the body ended: the body's outcome stands
                continue


# Where a step was when its time ran out, by the checker's functions (the innermost one found names the phase).
_PHASES = {
    "_prove": "the symbolic proof",
    "canonical": "the canonical form (symbolic)",
    "find_certificate": "the search for a non-negativity certificate (symbolic)",
    "_search": "the search for a discrete counterexample",
    "_gaussian_search": "the search for a linear-Gaussian counterexample",
}


def _phase(error: BaseException) -> str:
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.name in _PHASES:
            found = _PHASES[frame.name]
    return found or "the check"


def undecided_result(step: Step, index: int, reason: str, seconds: float) -> StepResult:
    """The result of a step that could not be judged (time limit, a model that cannot read it, an internal error)."""
    return StepResult(index=index, label=step.label, relation=step.relation, lhs=sympy.sstr(step.lhs),
                      rhs=sympy.sstr(step.rhs), verdict="undecided", expected=step.expected,
                      assumptions=[str(a) for a in step.assumptions], reason=reason, note=step.note, line=step.line,
                      seconds=seconds)


def check_step_in_time(checker: Checker, model: Model, step: Step, index: int, seconds: float | None) -> StepResult:
    """``checker.check_step`` under a time limit of ``seconds`` (None or 0: none). Never raises for a step: a step
    over the limit, one the model cannot give a meaning, or one that makes the checker fail is *undecided* with the
    reason (``KeyboardInterrupt`` and other ``BaseException`` still propagate)."""
    start = time.perf_counter()
    result = None
    try:
        with time_limit(seconds):
            result = checker.check_step(model, step, index)
        return result
    except StepTimeout as error:
        if result is not None:  # judged just before the deadline
            return result
        return undecided_result(step, index, f"time limit of {seconds:g} s reached in {_phase(error)} "
                                             "(raise it with --timeout SECONDS)", time.perf_counter() - start)
    except ModelError as error:
        return undecided_result(step, index, f"the model cannot give this step a meaning: {error}",
                                time.perf_counter() - start)
    except RecursionError:
        return undecided_result(step, index, "the expressions are nested too deeply for the checker",
                                time.perf_counter() - start)
    except Exception as error:  # an internal problem must not hide the other steps
        return undecided_result(step, index, f"internal error while checking: {type(error).__name__}: {error}",
                                time.perf_counter() - start)
