"""The training scaffold every deep method uses: named stages of epochs over a batch source,
one optimiser for the whole run, the progress display (whose ``epoch(loss)`` aborts the trial
on a non-finite loss), per-epoch seconds, and the loss records in one extras layout.

A method supplies its model (through its optimiser) and a per-batch ``step``; the scaffold
knows no method. A ``step`` returns the batch's named loss parts as scalar tensors, the loss
under ``"total"``. The scaffold optimises ``"total"`` when it requires a gradient; a step whose
schedule does not fit (several optimisers, a bi-level update) optimises by itself and returns
its values detached, so the scaffold only records them.

The records (``Trainer.extras``, what methods return in their extras)::

    {"loss_history": {stage: [mean total per epoch]},
     "loss_parts": {stage: {part: [mean per epoch]}},   # stages whose steps return parts
     "epoch_seconds": {stage: [seconds per epoch]}}      # and one-off steps (see timed)

An epoch's value is the mean over its batches, None for an epoch without batches.

Given a :class:`~mvbench.checkpoint.TrialCheckpoint` (``MethodInput.checkpoint``), the model and
every generator its training draws from, the trainer snapshots each stage at epoch boundaries and
resumes from the snapshots (see :mod:`mvbench.checkpoint`); the method's own code does not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from mvbench.checkpoint import TrialCheckpoint
from mvbench.nn import adam, minibatches
from mvbench.specs import Progress

__all__ = ["BatchSource", "Step", "Trainer", "shuffled_batches"]

BatchSource = Callable[[], Iterable[Any]]
"""Called once per epoch; yields that epoch's batches, each passed to the step as it is."""

Step = Callable[[Any], Mapping[str, Tensor]]
"""One batch -> its named loss parts (scalar tensors), the loss under ``"total"``."""

_T = TypeVar("_T")


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator, *, device: torch.device | str,
                     drop_last: bool = True) -> BatchSource:
    """A batch source of index batches: every epoch a new permutation of ``range(n)`` drawn
    from ``generator``, in slices of ``batch_size`` (see :func:`mvbench.nn.minibatches`)."""
    return lambda: minibatches(n, batch_size, generator, device=device, drop_last=drop_last)


class Trainer:
    """Runs a method's training stages with one optimiser and records them in ``extras``.

    ``optimizer`` serves every stage (None: every step optimises by itself); ``batches`` is
    the default batch source of the stages (a stage may pass its own).
    """

    def __init__(self, progress: Progress, optimizer: torch.optim.Optimizer | None,
                 batches: BatchSource | None = None, *, checkpoint: TrialCheckpoint | None = None,
                 model: nn.Module | None = None, generators: Sequence[torch.Generator] = ()) -> None:
        if checkpoint is not None and model is None:
            raise ValueError("a Trainer that checkpoints needs the model it trains: pass model=")
        self.progress, self.optimizer, self.batches = progress, optimizer, batches
        self.checkpoint, self.model, self.generators = checkpoint, model, tuple(generators)
        self.extras: dict[str, dict[str, Any]] = {"loss_history": {}, "loss_parts": {}, "epoch_seconds": {}}
        self._stages = 0  # stages run so far: a stage's snapshot is named by its position

    @classmethod
    def with_adam(cls, model: nn.Module, progress: Progress, *, lr: float, weight_decay: float = 0.0,
                  batches: BatchSource | None = None, checkpoint: TrialCheckpoint | None = None,
                  generators: Sequence[torch.Generator] = ()) -> Trainer:
        """A trainer whose optimiser is :func:`mvbench.nn.adam` over ``model``'s parameters."""
        return cls(progress, adam(model.parameters(), lr=lr, weight_decay=weight_decay), batches,
                   checkpoint=checkpoint, model=model, generators=generators)

    def run_stage(self, name: str, epochs: int, step: Step, *, batches: BatchSource | None = None,
                  before_epoch: Callable[[], None] | None = None) -> dict[str, list[float | None]]:
        """Run ``epochs`` epochs of ``step`` over the stage's batches (``batches``, else the
        trainer's); ``before_epoch()`` runs first in every epoch (e.g. to refresh a context the
        step reads) and counts towards the epoch's seconds. Records the stage in ``extras``
        and returns its parts other than ``"total"``, each a list of epoch means."""
        source = batches if batches is not None else self.batches
        if source is None:
            raise ValueError(f"stage {name!r} has no batch source: pass batches= to run_stage or the Trainer")
        index, self._stages = self._stages, self._stages + 1
        self.progress.stage(name, epochs)
        done = self._restore(index, name, epochs)
        totals: list[float | None] = done["totals"] if done else []
        seconds: list[float] = done["epoch_seconds"] if done else []
        epoch_parts: list[dict[str, float]] = done["parts"] if done else []
        for total in totals:
            self.progress.epoch(total)
        for epoch in range(len(totals), epochs):
            start = time.perf_counter()
            if before_epoch is not None:
                before_epoch()
            means = self._epoch(source(), step)
            seconds.append(time.perf_counter() - start)
            totals.append(means.pop("total", None))
            epoch_parts.append(means)
            self.progress.epoch(totals[-1])
            if self.checkpoint is not None and self.checkpoint.due(stage_end=epoch + 1 == epochs):
                self._snapshot(index, name, epochs, totals, seconds, epoch_parts)
        keys = dict.fromkeys(key for means in epoch_parts for key in means)
        parts = {key: [means.get(key) for means in epoch_parts] for key in keys}
        self.extras["loss_history"][name] = totals
        self.extras["epoch_seconds"][name] = seconds
        if parts:
            self.extras["loss_parts"][name] = parts
        return parts

    def _snapshot(self, index: int, name: str, epochs: int, totals: list[float | None], seconds: list[float],
                  epoch_parts: list[dict[str, float]]) -> None:
        """Write stage ``index``'s snapshot after its ``len(totals)`` epochs."""
        assert self.checkpoint is not None and self.model is not None
        self.checkpoint.write(index, name, {
            "epoch": len(totals), "epochs": epochs, "totals": totals, "epoch_seconds": seconds, "parts": epoch_parts,
            "extras": self.extras, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "generators": [generator.get_state() for generator in self.generators],
        })

    def _restore(self, index: int, name: str, epochs: int) -> dict[str, Any] | None:
        """Load stage ``index``'s snapshot into the model, optimiser, random streams and extras,
        and return it; None (nothing changed) without a usable one."""
        if self.checkpoint is None:
            return None
        state = self.checkpoint.read(index, name, epochs=epochs, generators=len(self.generators))
        if state is None:
            return None
        assert self.model is not None
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        for generator, generator_state in zip(self.generators, state["generators"]):
            generator.set_state(generator_state)
        self.extras = state["extras"]
        return state

    def timed(self, name: str, fn: Callable[[], _T], *, show: bool = False) -> _T:
        """``fn()``, its seconds appended to ``epoch_seconds[name]`` (a one-off step such as
        k-means or inference); ``show`` also shows it as a one-step stage in the progress."""
        if show:
            self.progress.stage(name, 1)
        start = time.perf_counter()
        out = fn()
        self.extras["epoch_seconds"].setdefault(name, []).append(time.perf_counter() - start)
        if show:
            self.progress.epoch(None)
        return out

    def _epoch(self, batches: Iterable[Any], step: Step) -> dict[str, float]:
        """One epoch: step and optimise every batch; the means of the parts, read at once."""
        # The parts stay on the device, summed in float64 in batch order (as Python floats would
        # be), and are read once per epoch: no wait for the device per batch. The read also
        # waits for the device's queue, so the epoch's seconds are honest.
        sums: dict[str, Tensor] = {}
        count = 0
        for batch in batches:
            values = step(batch)
            self._optimise(values["total"])
            for key, value in values.items():
                value = value.detach().double()
                sums[key] = value if key not in sums else sums[key] + value
            count += 1
        if not sums:
            return {}
        return dict(zip(sums, (torch.stack(list(sums.values())) / count).tolist()))

    def _optimise(self, loss: Tensor) -> None:
        if not loss.requires_grad:  # the step optimised by itself, or nothing has a gradient
            return
        if self.optimizer is None:
            raise ValueError("the step returned a loss with a gradient, but this trainer has no optimiser; "
                             "a step that optimises by itself returns its values detached")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
