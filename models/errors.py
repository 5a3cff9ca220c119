"""Errors the models and the trainer raise, with the place of the problem in their message."""

from __future__ import annotations


class NonFiniteTermError(FloatingPointError):
    """A term (or an input to one) became NaN or infinite.

    ``term`` names the term; the trainer fills in ``epoch``, ``split`` and ``step`` where it catches the error, and
    ``checkpoint`` with the last good checkpoint it kept.
    """

    def __init__(self, term: str, detail: str = "", *, epoch: int | None = None, split: str | None = None,
                 step: int | None = None, checkpoint: str | None = None) -> None:
        self.term = term
        self.detail = detail
        self.epoch = epoch
        self.split = split
        self.step = step
        self.checkpoint = checkpoint
        super().__init__(self._message())

    def located(self, *, epoch: int, split: str, step: int | None, checkpoint: str | None) -> "NonFiniteTermError":
        return NonFiniteTermError(self.term, self.detail, epoch=epoch, split=split, step=step, checkpoint=checkpoint)

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
        return message
