"""Seeded trials: resolve a trial, build its mask, run the method, record everything.

A trial is (method + options, dataset + options, missingness + options, seed). Its record
carries its own provenance, so a results file can be read without the command that made it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import resource
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvbench.checkpoint import DEFAULT_EVERY, TrialCheckpoint
from mvbench.data.datadir import resolve_data_dir
from mvbench.degeneracy import cluster_sizes, degeneracy_reasons
from mvbench.device import check_precision, device_name, resolve_device
from mvbench.errors import MvbenchError
from mvbench.metrics import DEFINITIONS as METRIC_DEFINITIONS
from mvbench.metrics import evaluate
from mvbench.missing import FILL_STRATEGIES, blank_missing, fill_missing, make_mask
from mvbench.options import Option, resolve_options
from mvbench.data.pathdataset import PATH_OPTIONS, dataset_from_path
from mvbench.progress import QuietProgress
from mvbench.data.preprocessing import preprocess_views
from mvbench.provenance import versions
from mvbench.records import SCHEMA_VERSION
from mvbench.registry import Registry
from mvbench.results import OUTPUTS_KEY
from mvbench.seeding import seed_everything
from mvbench.specs import (FEATURES_EXTRA, Dataset, DatasetSpec, MethodInput, MethodSpec, MissingnessSpec,
                           Progress)


@dataclass(frozen=True)
class Trial:
    """What the user asked for; option values may be strings from the CLI or typed values."""

    method: str  # a method name or a variant name (e.g. "rav-literal")
    dataset: str
    seed: int
    missing: str = "none"
    method_options: Mapping[str, Any] = field(default_factory=dict)
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    missing_options: Mapping[str, Any] = field(default_factory=dict)
    fill: str = "mean"
    option_set: str | None = None


@dataclass(frozen=True)
class Settings:
    """How trials run (not part of what a trial is, except the device kind and precision)."""

    device: str = "auto"
    precision: str = "fp32"
    data_dir: str | None = None
    # Keep each trial's predicted labels (and features, when the method returns them) in the
    # record under OUTPUTS_KEY, for the driver to save beside the records file.
    save_labels: bool = False
    # The folder of the snapshots of long trials (mvbench.checkpoint), one subfolder per trial key;
    # None: none are written. A sweep puts them beside its records.
    checkpoints: str | None = None
    checkpoint_every: float = DEFAULT_EVERY


@dataclass(frozen=True)
class ResolvedTrial:
    """A trial with every option value filled in, ready to run and to key."""

    trial: Trial
    method: MethodSpec
    dataset: DatasetSpec | None
    dataset_name: str
    mechanism: MissingnessSpec
    method_options: dict[str, Any]
    dataset_options: dict[str, Any]
    missing_options: dict[str, Any]
    preset: dict[str, Any]
    variant: str | None = None

    def key(self, device: torch.device, precision: str) -> str:
        """A stable hash of the trial's configuration: what determines its result, with options at
        their defaults left out (insensitive to option order and spelling)."""
        payload = {
            "method": self.method.name,
            # Version 1 is left out, like a default option, so that records made before methods
            # had versions keep their keys; any later version changes every key of the method.
            **({"method_version": self.method.version} if self.method.version != 1 else {}),
            "method_options": _changed_options(self.method_options, self.method.options),
            "dataset": self.dataset_name,
            "dataset_options": _changed_options(self.dataset_options, dataset_declared(self)),
            "missing": self.trial.missing,
            "missing_options": _changed_options(self.missing_options, self.mechanism.options),
            **({"scaling_fit": "observed rows"} if self.refits_scaling() else {}),
            "seed": self.trial.seed, "fill": self.trial.fill if not self.method.handles_missing else None,
            "device_type": device.type, "precision": precision,
        }
        blob = _canonical(payload).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


    def refits_scaling(self) -> bool:
        """Whether the dataset's scaling is refitted on the rows a generated mask leaves observed.
        Such trials are keyed apart from records made before the refit existed, when the
        scaling saw the rows the mask hides."""
        generated = self.trial.missing not in ("none", "file")
        return generated and self.dataset_options.get("preprocess", "none") != "none"


def dataset_declared(resolved: ResolvedTrial) -> tuple[Option, ...]:
    """The options the trial's dataset declares (a ``.mat`` path: the path loader's)."""
    return tuple(resolved.dataset.options if resolved.dataset is not None else PATH_OPTIONS)


def _changed_options(values: Mapping[str, Any], declared: Iterable[Option]) -> dict[str, Any]:
    """The options whose value is not the declared default.

    Keys leave defaults out so that a plugin can gain an option (with a default that keeps its
    old behaviour) without orphaning every recorded trial. Changing a default is then a code
    change like a bug fix: the key does not see it, the record's git commit does.
    """
    defaults = {option.name: option.default for option in declared}
    return {name: value for name, value in values.items()
            if name not in defaults or _canonical(value) != _canonical(defaults[name])}


def _canonical(value: Any) -> str:
    """One text per value whatever the order of its dict keys (tuples read as lists)."""
    return json.dumps(value, sort_keys=True, default=list)


def is_path_dataset(name: str) -> bool:
    return name.startswith("mat:") or name.lower().endswith((".mat", ".h5", ".hdf5"))


def resolve(trial: Trial, registry: Registry) -> ResolvedTrial:
    """Look up the plugins and resolve all options; every mistake is a one-line error."""
    method, variant = registry.method_variant(trial.method)
    mechanism = registry.mechanism(trial.missing)
    if trial.fill not in FILL_STRATEGIES:
        raise MvbenchError(f"unknown fill strategy {trial.fill!r}; choose one of {', '.join(FILL_STRATEGIES)}")
    if is_path_dataset(trial.dataset):
        dataset_spec, dataset_name = None, trial.dataset
        dataset_options = resolve_options(PATH_OPTIONS, trial.dataset_options,
                                          owner=f"dataset file {trial.dataset!r}")
    else:
        dataset_spec = registry.dataset(trial.dataset)
        dataset_name = dataset_spec.name
        dataset_options = resolve_options(dataset_spec.options, trial.dataset_options,
                                          owner=f"dataset {dataset_name!r}")
    preset = dict(method.presets.get(dataset_name, {}))
    variant_options = dict(method.variants[variant].options) if variant else {}
    # A variant overrides the method's documented preset for this dataset; the user's values
    # override both.
    method_options = resolve_options(method.options, {**preset, **variant_options, **trial.method_options},
                                     owner=f"method {trial.method!r}")
    missing_options = resolve_options(mechanism.options, trial.missing_options,
                                      owner=f"missingness {mechanism.name!r}")
    if variant and trial.option_set is None:
        trial = replace(trial, option_set=variant)
    return ResolvedTrial(trial, method, dataset_spec, dataset_name, mechanism, method_options,
                         dataset_options, missing_options, preset, variant)


class DatasetCache:
    """Loads each (dataset, options) once per process; trials never modify a cached dataset."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir = data_dir
        self._cache: dict[str, Dataset] = {}

    def get(self, resolved: ResolvedTrial) -> Dataset:
        key = _canonical([resolved.dataset_name, resolved.dataset_options])
        if key not in self._cache:
            self._cache[key] = self._load(resolved)
        return self._cache[key]

    def _load(self, resolved: ResolvedTrial) -> Dataset:
        data_dir = str(resolve_data_dir(self.data_dir))
        if resolved.dataset is None:
            dataset = dataset_from_path(resolved.dataset_name, resolved.dataset_options, data_dir)
        else:
            dataset = resolved.dataset.load(resolved.dataset_options, data_dir)
        check_finite(dataset)
        return dataset


def check_finite(dataset: Dataset) -> None:
    """Every observed row of every view must be finite, whichever plugin loaded the dataset."""
    for v, x in enumerate(dataset.views):
        rows = x if dataset.observed is None else x[dataset.observed[:, v]]
        bad = int((~np.isfinite(rows)).any(axis=1).sum())
        if bad:
            raise MvbenchError(f"dataset {dataset.name!r}: view {v} has NaN or inf in {bad} observed rows; "
                               f"fix the data, or mark those rows missing (entirely NaN in a .mat file)")


def preflight(resolved: Iterable[ResolvedTrial], data_dir: str | None) -> DatasetCache:
    """Load every dataset the trials need before any of them runs, so that a missing file, a
    checksum mismatch or bad values stop the command with one line instead of failing every
    trial; returns the loaded datasets for reuse."""
    cache = DatasetCache(data_dir)
    for item in resolved:
        cache.get(item)
    return cache


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak so far (one trial per process in a pool).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check_labels(labels: Any, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"method returned labels of shape {labels.shape}, expected ({n},)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"method returned labels of dtype {labels.dtype}, expected integers")
    if n and labels.min() < 0:
        raise ValueError("method returned negative labels")
    return labels.astype(np.int64)


def base_record(resolved: ResolvedTrial, device: torch.device, precision: str) -> dict[str, Any]:
    """What a record says about a trial before it runs (status ``failed`` until it finishes)."""
    trial = resolved.trial
    return {
        "schema_version": SCHEMA_VERSION,
        "trial_key": resolved.key(device, precision),
        "status": "failed",
        "method": resolved.method.name,
        "method_version": resolved.method.version,
        "variant": resolved.variant,
        "option_set": trial.option_set,
        "method_options": resolved.method_options,
        "preset": resolved.preset,
        "dataset": resolved.dataset_name,
        "dataset_options": resolved.dataset_options,
        "missing": trial.missing,
        "missing_options": resolved.missing_options,
        "seed": trial.seed,
        "fill": None if resolved.method.handles_missing else trial.fill,
        # Said in every record of a dataset that ships its own missing-view pattern, so that a
        # trial that ran it otherwise (e.g. as complete data) is never mistaken for its default.
        **({"dataset_default_missing": resolved.dataset.default_missing}
           if resolved.dataset is not None and resolved.dataset.default_missing != "none" else {}),
        "device": str(device),
        "precision": precision,
        "versions": versions(),
    }


def snapshot_fingerprint(trial_key: str, versions: Mapping[str, Any], device_name: str) -> dict[str, str]:
    """What a trial's snapshots must have been made by to be used: the same trial, code, torch and
    hardware (threads included: CPU reductions depend on them)."""
    return {"trial_key": trial_key, "git_commit": str(versions["git_commit"]), "torch": str(versions["torch"]),
            "device_name": device_name}


def trial_checkpoint(record: dict[str, Any], settings: Settings) -> TrialCheckpoint | None:
    """The snapshots under ``settings.checkpoints`` of the trial ``record`` describes."""
    if settings.checkpoints is None:
        return None
    fingerprint = snapshot_fingerprint(record["trial_key"], record["versions"], record["device_name"])
    return TrialCheckpoint(Path(settings.checkpoints) / record["trial_key"], fingerprint, settings.checkpoint_every)


def run_resolved(resolved: ResolvedTrial, settings: Settings, cache: DatasetCache,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Run one resolved trial and return its record; a failure is recorded, not raised
    (except KeyboardInterrupt, which stops the run)."""
    trial, method = resolved.trial, resolved.method
    device = resolve_device(settings.device)
    precision = check_precision(settings.precision)
    started = time.perf_counter()
    checkpoint: TrialCheckpoint | None = None
    record = base_record(resolved, device, precision)
    record.update({
        "device_name": device_name(device),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "metric_definitions": METRIC_DEFINITIONS,
    })
    try:
        dataset = cache.get(resolved)
        mechanism_spec = resolved.mechanism
        record.update({
            "n_samples": dataset.n_samples, "n_views": dataset.n_views, "n_clusters": dataset.n_clusters,
            "preprocessing": dataset.preprocessing, "missing_definition": mechanism_spec.definition,
            "fill_definition": None if method.handles_missing else FILL_STRATEGIES[trial.fill],
        })
        mask = make_mask(dataset, mechanism_spec, resolved.missing_options, trial.seed)
        record["incomplete_fraction"] = float((~mask).any(axis=1).mean())
        record["missing_per_view"] = (~mask).mean(axis=0).round(6).tolist()
        scaled = dataset.views
        if resolved.refits_scaling() and dataset.raw_views is not None and not mask.all():
            # The statistics of the scaling must not see the rows this trial's mask hides.
            scaled, record["preprocessing"] = preprocess_views(dataset.raw_views, dataset.scaling, mask)
        views = (blank_missing(scaled, mask) if method.handles_missing
                 else fill_missing(scaled, mask, trial.fill))
        seed_everything(trial.seed)
        checkpoint = trial_checkpoint(record, settings)
        if device.type == "cuda":
            # A reused worker process still caches the previous trial's blocks: release them so
            # that the peak reserved memory is this trial's own.
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        inputs = MethodInput(
            views=[torch.as_tensor(x, dtype=torch.float32, device=device) for x in views],
            mask=torch.as_tensor(mask, device=device),
            n_clusters=dataset.n_clusters,
            options=dict(resolved.method_options),
            seed=trial.seed,
            device=device,
            precision=precision,
            progress=progress or QuietProgress(),
            dataset_name=resolved.dataset_name,
            checkpoint=checkpoint,
        )
        train_start = time.perf_counter()
        output = method.fit_predict(inputs)
        record["train_time"] = time.perf_counter() - train_start
        if checkpoint is not None and checkpoint.resumed:
            record["train_time"] += checkpoint.earlier_seconds
            record["resumed"] = {"from": checkpoint.resumed, "earlier_seconds": checkpoint.earlier_seconds}
        features = output.extras.pop(FEATURES_EXTRA, None)  # an array: saved, never in the JSON
        labels = _check_labels(output.labels, dataset.n_samples)
        record["cluster_sizes"] = cluster_sizes(labels)
        record["degenerate"] = degeneracy_reasons(record["cluster_sizes"], dataset.n_clusters, output.extras)
        record["metrics"] = evaluate(dataset.labels, labels)
        record["n_predicted_clusters"] = len(record["cluster_sizes"])
        record["labels_sha256"] = hashlib.sha256(labels.tobytes()).hexdigest()
        record["extras"] = output.extras
        record["status"] = "ok"
        if settings.save_labels:
            record[OUTPUTS_KEY] = {"labels": labels, **({} if features is None else
                                                         {"features": np.asarray(features, dtype=np.float32)})}
    except KeyboardInterrupt:
        raise
    except MvbenchError as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a method bug must not end the other trials
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["wall_time"] = time.perf_counter() - started + record.get("resumed", {}).get("earlier_seconds", 0.0)
    if checkpoint is not None:
        checkpoint.remove()  # the record is written now, ok or failed; only an interrupt keeps them
    record["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if device.type == "cuda":
        record["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        record["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return record
