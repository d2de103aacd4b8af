"""Progress reporting for methods: a silent reporter and a rich one. Both reject a
non-finite loss, so a diverging trial is recorded as failed instead of returning garbage."""

from __future__ import annotations

import math

from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from mvbench.errors import NonFiniteLossError


class QuietProgress:
    """Tracks the stage and checks losses; shows nothing (tests, workers)."""

    def __init__(self) -> None:
        self.current_stage = ""

    def stage(self, name: str, total: int) -> None:
        self.current_stage = name

    def epoch(self, loss: float | None = None) -> None:
        if loss is not None and not math.isfinite(loss):
            # Nearly always unscaled features (e.g. raw MSRCv1 counts up to 77,526) or a too
            # large learning rate, so the message names both fixes.
            raise NonFiniteLossError(
                f"loss became {loss} during stage {self.current_stage!r}; scale the features "
                f"(--set dataset.preprocess=standardize where the dataset offers it) or lower the "
                f"method's learning rate (--set lr=...)")


class InterruptingProgress(QuietProgress):
    """A silent reporter that counts the epochs trained over all stages and raises ``error`` at
    the end of epoch ``stop``: an interrupt at a known point, to check that a trial resumes."""

    def __init__(self, stop: int | None = None, error: type[BaseException] = KeyboardInterrupt) -> None:
        super().__init__()
        self.epochs, self.stop, self.error = 0, stop, error

    def epoch(self, loss: float | None = None) -> None:
        super().epoch(loss)
        self.epochs += 1
        if self.epochs == self.stop:
            raise self.error


class RichTrialProgress(QuietProgress):
    """Shows the epochs of the current stage as a bar under the trials bar."""

    def __init__(self, progress: RichProgress) -> None:
        super().__init__()
        self._progress = progress
        self._task: TaskID | None = None

    def stage(self, name: str, total: int) -> None:
        super().stage(name, total)
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(f"  {name}", total=total)

    def epoch(self, loss: float | None = None) -> None:
        super().epoch(loss)
        if self._task is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
