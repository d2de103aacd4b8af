"""Snapshots of a long trial at epoch boundaries, so that an interrupted trial resumes where its
last snapshot stopped instead of starting over.

A trial's snapshots live in one folder, ``<results folder>/checkpoints/<trial key>/``, one file
per training stage (numbered in the order the method runs them): the stage's epochs done, the
model, the optimiser, the random streams, the losses so far, and the training seconds so far. A
stage's file is rewritten at most every ``every`` seconds while it trains, and once at its end
when the trial has run that long (short trials never write one). On resume, a finished stage
restores its end state, so the code the method runs between stages (k-means, say) runs again on
the same state and draws the same numbers; the unfinished stage restores its last snapshot and
continues. The result equals the uninterrupted trial's, bit for bit on the same machine.

A snapshot is used only by the same trial (key), code (git commit), torch and hardware that
wrote it; any other is set aside and the trial starts over. The runner deletes the folder once
the trial's record is written, ok or failed: only an interrupt leaves it behind.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["DEFAULT_EVERY", "SnapshotInfo", "TrialCheckpoint", "latest_snapshot", "snapshots_beside", "snapshots_of"]

DEFAULT_EVERY = 600.0
"""Seconds of training between two snapshots of a stage: at most that much is redone."""


class TrialCheckpoint:
    """The snapshots of one trial in ``folder``, written and read by the method's trainer.

    ``fingerprint`` names what a snapshot must have been made by to be reused (see the module).
    Training seconds are counted from construction, plus those a restored snapshot had.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, Any], every: float = DEFAULT_EVERY) -> None:
        self.folder, self.fingerprint, self.every = Path(folder), fingerprint, every
        self._start = time.perf_counter()
        self._offset = 0.0  # training seconds of the processes before this one
        self._last_write = self._start
        self.resumed: list[str] = []  # "stage epoch k of n" for every snapshot restored

    @property
    def earlier_seconds(self) -> float:
        """Training seconds the processes before this one had spent when they wrote the last
        snapshot restored."""
        return self._offset

    def seconds(self) -> float:
        """Training seconds of the trial so far, earlier processes included."""
        return self._offset + time.perf_counter() - self._start

    def due(self, *, stage_end: bool) -> bool:
        """Whether to write a snapshot now: ``every`` seconds after the last one (or the trial's
        start); at a stage's end, once the trial has trained that long (earlier processes included)."""
        if stage_end:
            return self.seconds() >= self.every
        return time.perf_counter() - self._last_write >= self.every

    def write(self, index: int, stage: str, state: dict[str, Any]) -> None:
        """Replace stage ``index``'s snapshot with ``state`` (atomically: a reader, or a process
        killed mid-write, sees the old file or the new one, never part of one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(index, stage)
        partial = path.with_name(path.name + f".{os.getpid()}.partial")
        torch.save({"fingerprint": self.fingerprint, "seconds": self.seconds(), **state}, partial)
        os.replace(partial, path)
        self._last_write = time.perf_counter()

    def read(self, index: int, stage: str, *, epochs: int, generators: int) -> dict[str, Any] | None:
        """Stage ``index``'s snapshot if one was made by this trial's fingerprint for a stage of
        ``epochs`` epochs and ``generators`` random streams; the training seconds count on from it."""
        path = self._path(index, stage)
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file costs its stage's progress, not the trial
            print(f"checkpoint {path} is unreadable ({type(exc).__name__}); the stage starts over", flush=True)
            return None
        if state.get("fingerprint") != self.fingerprint:
            print(f"checkpoint {path} was made by other code or hardware; the stage starts over", flush=True)
            return None
        if state["epochs"] != epochs or len(state["generators"]) != generators:
            print(f"checkpoint {path} was made for a stage of {state['epochs']} epochs and "
                  f"{len(state['generators'])} random streams; the stage starts over", flush=True)
            return None
        # This process's seconds so far went to replaying what the snapshot holds: small, and
        # counted on top, so that the total never falls below the earlier processes' own.
        self._offset = state["seconds"]
        self._last_write = time.perf_counter()
        self.resumed.append(f"{stage} epoch {state['epoch']} of {state['epochs']}")
        return state

    def remove(self) -> None:
        """Delete the trial's snapshots (its record has been written)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _path(self, index: int, stage: str) -> Path:
        return self.folder / f"{index:02d}-{stage}.pt"


def snapshots_beside(records: Path) -> Path:
    """The folder of snapshots kept beside the records file ``records`` (a sweep's, a run's or a
    quality script's ``--out``)."""
    return records.parent / "checkpoints"


@dataclass(frozen=True)
class SnapshotInfo:
    """How far a trial's last snapshot got, the training seconds it holds, and what made it
    (:class:`TrialCheckpoint`'s fingerprint)."""

    stage: str
    epoch: int
    epochs: int
    seconds: float
    fingerprint: dict[str, Any]

    def describe(self) -> str:
        return f"{self.stage} epoch {self.epoch} of {self.epochs}"


def latest_snapshot(folder: Path) -> SnapshotInfo | None:
    """The last stage's snapshot in a trial's ``folder``, None without a readable one. Memory-mapped:
    the model's tensors are not read, so this takes a fraction of a second per trial."""
    for path in sorted(folder.glob("*.pt"), reverse=True):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            return SnapshotInfo(stage=path.stem.split("-", 1)[-1], epoch=int(state["epoch"]),
                                epochs=int(state["epochs"]), seconds=float(state["seconds"]),
                                fingerprint=dict(state["fingerprint"]))
        except Exception:  # damaged or foreign: the trial will set it aside too
            continue
    return None


def snapshots_of(folder: Path, keys: Iterable[str]) -> dict[str, SnapshotInfo]:
    """The last snapshot of each of the ``keys`` that has one in ``folder`` (a sweep's checkpoints folder)."""
    found = {key: latest_snapshot(folder / key) for key in keys}
    return {key: info for key, info in found.items() if info is not None}
