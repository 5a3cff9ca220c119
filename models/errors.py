"""Errors the models and the trainer raise, with the place of the problem in their message."""

from __future__ import annotations


class NonFiniteTermError(FloatingPointError):
    """A term (or an input to one) became NaN or infinite.

    ``term`` names the term; the trainer fills in ``epoch``, ``split`` and ``step`` where it catches the error,
    ``checkpoint`` with the last good checkpoint it kept, and ``advice`` with what to do next.
    """

    def __init__(self, term: str, detail: str = "", *, epoch: int | None = None, split: str | None = None,
                 step: int | None = None, checkpoint: str | None = None, advice: str | None = None) -> None:
        self.term = term
        self.detail = detail
        self.epoch = epoch
        self.split = split
        self.step = step
        self.checkpoint = checkpoint
        self.advice = advice
        super().__init__(self._message())

    def located(self, *, epoch: int, split: str, step: int | None, checkpoint: str | None,
                advice: str | None = None) -> "NonFiniteTermError":
        return NonFiniteTermError(self.term, self.detail, epoch=epoch, split=split, step=step, checkpoint=checkpoint,
                                  advice=advice)

    def _message(self) -> str:
        where = []
        if self.epoch is not None:
            where.append(f"epoch {self.epoch}")
        if self.split is not None:
            where.append(f"split '{self.split}'")
        if self.step is not None:
            where.append(f"step {self.step}")
        subject = "the parameters are" if self.term == "parameters" else f"term '{self.term}' is"
        message = f"{subject} not finite" + (f" at {', '.join(where)}" if where else "")
        if self.detail:
            message += f" ({self.detail})"
        if self.checkpoint is not None:
            message += f"; the run stopped and the last good checkpoint is kept at {self.checkpoint}"
        if self.advice:
            message += f"; {self.advice}"
        return message


class DivergenceError(FloatingPointError):
    """Training diverged: the ELBO per data dimension fell below the divergence guard's threshold (see
    :class:`elbocheck.models.divergence.DivergenceGuard`), while every term was still finite.

    ``term`` names the term that dominates the fall (the one of largest magnitude besides ``elbo`` and ``objective``);
    ``value`` is the ELBO per dimension that tripped the guard and ``threshold`` the bound it fell below.
    """

    def __init__(self, message: str, *, term: str, epoch: int, split: str, value: float, threshold: float,
                 checkpoint: str | None = None) -> None:
        self.term = term
        self.epoch = epoch
        self.split = split
        self.value = value
        self.threshold = threshold
        self.checkpoint = checkpoint
        self.reason = message
        super().__init__(message if checkpoint is None else f"{message}; {checkpoint}")

    def located(self, checkpoint: str) -> "DivergenceError":
        return DivergenceError(self.reason, term=self.term, epoch=self.epoch, split=self.split, value=self.value,
                               threshold=self.threshold, checkpoint=checkpoint)


class RunDirectoryError(Exception):
    """A run directory cannot be used as asked; ``path`` is the directory. Subclasses name the reason."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class RunDirectoryBusyError(RunDirectoryError):
    """Another live process holds the run directory's lock (``pid`` is that process, when known)."""

    def __init__(self, message: str, path: str | None = None, pid: int | None = None) -> None:
        self.pid = pid
        super().__init__(message, path)


class RunDirectoryOccupiedError(RunDirectoryError):
    """The run directory holds another run (or is not a directory); nothing in it was changed."""


class RunDirectoryWriteError(RunDirectoryError):
    """Writing into the run directory failed (read-only file system, permission denied, disk full, ...);
    ``errno`` is the operating system's error number."""

    def __init__(self, message: str, path: str | None = None, errno: int | None = None) -> None:
        self.errno = errno
        super().__init__(message, path)


class CheckpointError(RunDirectoryError):
    """No checkpoint of the run directory can be read (truncated, garbage, or from another model)."""
