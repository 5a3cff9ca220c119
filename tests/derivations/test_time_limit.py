"""The per-step time limit: a step that spins in pure Python stops at the limit as *undecided* with the reason, the
limit cooperates with another interval timer, and off the main thread it says that it cannot be enforced."""

import signal
import threading
import time

import pytest
from elbocheck.derivations import Checker, Model, Step
from elbocheck.derivations.expressions import log
from elbocheck.derivations.model import ModelError
from elbocheck.derivations.time_limit import StepTimeout, check_step_in_time, limit_enforceable, time_limit

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the time limit needs setitimer (POSIX)")

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
STEP = Step(log("p(x)"), "=", log("p(x)"), label="(1)", line=3)


def _spin():
    while True:  # pure Python, like SymPy spinning on a large model
        sum(range(1000))


class _Prover(Checker):
    """A checker whose symbolic proof never ends (the frame is named like the checker's, to name the phase)."""

    def check_step(self, model, step, index=1):
        def _prove():
            _spin()

        _prove()


def test_a_spinning_step_is_undecided_at_the_limit_with_the_reason():
    handler = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    result = check_step_in_time(_Prover(), VAE, STEP, 1, 0.3)
    elapsed = time.monotonic() - start
    assert result.verdict == "undecided"
    assert result.reason.startswith("time limit of 0.3 s reached in the symbolic proof")
    assert "--timeout" in result.reason
    assert 0.3 <= elapsed < 3.0 and 0.3 <= result.seconds < 3.0
    assert result.label == "(1)" and result.line == 3 and result.relation == "="
    assert signal.getsignal(signal.SIGALRM) == handler  # restored
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_step_within_the_limit_keeps_its_verdict():
    result = check_step_in_time(Checker(), VAE, STEP, 1, 30)
    assert result.verdict == "proven"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # nothing left armed


def test_no_limit_with_none_or_zero():
    for seconds in (None, 0):
        with time_limit(seconds) as enforced:
            assert not enforced
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_errors_of_a_step_become_undecided_reasons():
    class Failing(Checker):
        def __init__(self, error):
            super().__init__()
            self.error = error

        def check_step(self, model, step, index=1):
            raise self.error

    assert check_step_in_time(Failing(ModelError("no such factor")), VAE, STEP, 1, 5).reason == \
        "the model cannot give this step a meaning: no such factor"
    assert check_step_in_time(Failing(ZeroDivisionError("x")), VAE, STEP, 1, 5).reason == \
        "internal error while checking: ZeroDivisionError: x"
    assert "nested too deeply" in check_step_in_time(Failing(RecursionError()), VAE, STEP, 1, 5).reason
    with pytest.raises(KeyboardInterrupt):
        check_step_in_time(Failing(KeyboardInterrupt()), VAE, STEP, 1, 5)


def test_another_timer_armed_before_is_kept_and_fires_at_its_time():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(time.monotonic()))
    try:
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        with time_limit(5.0):  # a short body: the other timer is re-armed afterwards
            time.sleep(0.05)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.0 < remaining <= 0.36
        while not fired and time.monotonic() - start < 3:
            time.sleep(0.01)
        assert fired and 0.35 <= fired[0] - start < 2.0
        # the other timer's deadline comes first, inside the limit: it fires then, and the limit still holds
        fired.clear()
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(StepTimeout), time_limit(0.5):
            _spin()
        assert fired and fired[0] - start < 0.5
        assert 0.5 <= time.monotonic() - start < 3.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_off_the_main_thread_the_limit_is_not_enforced_and_says_so():
    seen = {}

    def worker():
        seen["enforceable"] = limit_enforceable()
        with time_limit(0.01) as enforced:
            seen["enforced"] = enforced
            time.sleep(0.05)  # would have been stopped on the main thread
        seen["result"] = check_step_in_time(Checker(), VAE, STEP, 1, 0.01).verdict

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    assert seen == {"enforceable": False, "enforced": False, "result": "proven"}
    assert limit_enforceable()  # here, on the main thread
