"""The data types that plugins exchange with the core.

A plugin contributes *specs* (what it is called, what options it takes, a function that does
the work); the core resolves options, seeds, masks and records, and calls the function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from mvbench.checkpoint import TrialCheckpoint
from mvbench.options import Option
from mvbench.seeding import derive_seed


@dataclass
class Dataset:
    """A loaded multi-view dataset.

    ``views`` are float32 arrays of shape (N, d_v); ``labels`` are int64 in 0..K-1;
    ``observed`` is an optional fixed (N, V) bool mask shipped with the file (True = observed),
    used by the ``file`` missingness mechanism to reproduce published incomplete settings.
    """

    name: str
    views: list[np.ndarray]
    labels: np.ndarray
    n_clusters: int
    source: str = ""
    citation: str = ""
    preprocessing: list[str] = field(default_factory=list)
    observed: np.ndarray | None = None
    # The views before ``scaling`` (a mvbench.data.preprocessing kind), kept so that a trial whose
    # generated mask hides rows can refit the scaling on its observed rows only.
    raw_views: list[np.ndarray] | None = None
    scaling: str = "none"

    def __post_init__(self) -> None:
        n = len(self.labels)
        if not self.views:
            raise ValueError(f"dataset {self.name!r} has no views")
        for v, x in enumerate(self.views):
            if x.ndim != 2 or x.shape[0] != n:
                raise ValueError(
                    f"dataset {self.name!r}: view {v} has shape {x.shape}, expected ({n}, d)"
                )
        if self.observed is not None and self.observed.shape != (n, len(self.views)):
            raise ValueError(f"dataset {self.name!r}: observed mask shape {self.observed.shape}")

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def n_views(self) -> int:
        return len(self.views)

    @property
    def dims(self) -> list[int]:
        return [x.shape[1] for x in self.views]


class Progress(Protocol):
    """What a method may report while it trains (the runner shows it and checks the loss)."""

    def stage(self, name: str, total: int) -> None:
        """Start a named stage of ``total`` epochs."""

    def epoch(self, loss: float | None = None) -> None:
        """One epoch of the current stage is done; a non-finite loss aborts the trial."""


@dataclass
class MethodInput:
    """Everything a method sees. It never sees the labels.

    ``views`` are float32 tensors (N, d_v) on ``device``. For a method that handles missing
    views, rows where ``mask[:, v]`` is False hold NaN, so reading them fails loudly; for one
    that does not, the runner has filled them (see ``fill``) and ``mask`` still says which
    rows were filled.
    """

    views: list[torch.Tensor]
    mask: torch.Tensor
    n_clusters: int
    options: Mapping[str, Any]
    seed: int
    device: torch.device
    precision: str
    progress: Progress
    dataset_name: str = ""
    # Where the trial's snapshots go, for the method to hand to its Trainer; None: no snapshots.
    checkpoint: TrialCheckpoint | None = None

    def seed_for(self, stream: str) -> int:
        """The seed of one named random stream of this trial ("init", "batches", "kmeans",
        "imputation", ...): a stable hash of the trial seed and the stream name, so that
        streams are independent of each other and never computed as ``seed + v``."""
        return derive_seed(self.seed, stream)


# The optional extras key under which a method returns its final per-sample features, an (N, d)
# array (e.g. the embedding its labels come from). The runner takes it out of the extras, so it
# never reaches the JSON record; with --save-labels it is saved beside the labels, for
# ``mvbench plot`` to draw a 2-D embedding. Computing it must not change the labels.
FEATURES_EXTRA = "features"


@dataclass
class MethodOutput:
    """One label per sample (int, length N) and optional JSON-serialisable extras (and, under
    ``FEATURES_EXTRA``, an optional (N, d) array of final features)."""

    labels: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """A named option set that a method declares (e.g. ``rav-literal``, an ablation such as
    ``rav-noLS``), usable wherever a method name is accepted. ``published`` names the paper's
    number for it in the dataset registry (e.g. "without L_S"), for an ablation variant."""

    options: Mapping[str, Any]
    description: str
    published: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A clustering method. ``presets`` maps a dataset name to option overrides that the
    method documents (applied before the user's ``--set``). ``variants`` maps a name to a
    :class:`Variant` (applied after the preset, before ``--set``). ``version`` is part of every
    trial key and record: bump it whenever a default's value or meaning changes, so that
    records made under the old defaults are never served for the new ones."""

    name: str
    fit_predict: Callable[[MethodInput], MethodOutput]
    description: str
    citation: str = ""
    options: tuple[Option, ...] = ()
    handles_missing: bool = False
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # ``mvbench run`` without --method picks the installed method with the highest priority.
    default_priority: int = 0
    version: int = 1
    variants: Mapping[str, Variant] = field(default_factory=dict)
    # Options for a run of seconds on tiny data (e.g. one epoch per stage), used by mvbench check.
    smoke_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset. ``load(options, data_dir)`` returns a :class:`Dataset`; ``summary`` holds
    facts known without loading (N, V, K, dims) for listings."""

    name: str
    load: Callable[[Mapping[str, Any], str], Dataset]
    description: str
    citation: str = ""
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    # The missingness a trial uses when the user names none: "file" for a dataset that ships its
    # own missing-view pattern (its missing rows are zeros or NaN, not samples), so running it as
    # complete data takes an explicit --missing none.
    default_missing: str = "none"


@dataclass(frozen=True)
class MissingnessSpec:
    """A missing-view mechanism. ``make_mask(dataset, options, rng)`` returns an (N, V) bool
    array, True = observed; every row must keep at least one view. ``definition`` is the
    one-line meaning of its parameters, copied into every result row."""

    name: str
    make_mask: Callable[[Dataset, Mapping[str, Any], Any], np.ndarray]
    description: str
    definition: str
    options: tuple[Option, ...] = ()
    # An author's mask generator reproduced exactly: ``make_mask`` then receives numpy's legacy
    # ``RandomState(trial seed)``, as the authors' code seeds it, instead of a Generator derived
    # from (dataset, mechanism, options, seed). Either way the mask depends on nothing else.
    legacy_seed: bool = False
