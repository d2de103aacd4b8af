"""Epoch logging shared by the quality benchmarks: they run for many minutes in the
background, so their log file must show that training advances and what the loss does."""

from __future__ import annotations

import time

from mvbench.progress import QuietProgress


class EpochLog(QuietProgress):
    """Prints every ``every``-th epoch of a stage (and its last) with the loss and the seconds
    since the log started; still rejects a non-finite loss like every mvbench progress."""

    def __init__(self, every: int = 10) -> None:
        super().__init__()
        self.every, self.done, self.total = every, 0, 0
        self.started = time.perf_counter()

    def stage(self, name: str, total: int) -> None:
        super().stage(name, total)
        self.done, self.total = 0, total

    def epoch(self, loss: float | None = None) -> None:
        super().epoch(loss)
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            shown = "-" if loss is None else f"{loss:.5f}"
            print(f"  [{time.perf_counter() - self.started:7.1f}s] {self.current_stage} "
                  f"{self.done}/{self.total} loss {shown}", flush=True)
