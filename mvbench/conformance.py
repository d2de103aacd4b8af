"""``mvbench check``: run a plugin through the contract on tiny synthetic data, as
scikit-learn's ``check_estimator`` does for estimators.

Each check returns a :class:`CheckResult`; a failed one says what is wrong and what to fix. Method
checks run ``fit_predict`` on a small seeded three-view dataset with the method's
``smoke_options`` (tiny epochs), so they take seconds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
import torch

from mvbench.checkpoint import TrialCheckpoint
from mvbench.errors import MvbenchError
from mvbench.options import resolve_options
from mvbench.progress import InterruptingProgress, QuietProgress
from mvbench.registry import Registry, get_registry
from mvbench.specs import Dataset, DatasetSpec, MethodInput, MethodOutput, MethodSpec, MissingnessSpec, Progress

N_SAMPLES, N_CLUSTERS, DIMS = 60, 3, (5, 4, 6)


@dataclass(frozen=True)
class CheckResult:
    plugin: str
    check: str
    ok: bool
    message: str = ""
    skipped: bool = False


def tiny_dataset(seed: int = 0) -> Dataset:
    """Three views of three well separated clusters (features in [0, 1], like a scaled file)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N_SAMPLES) % N_CLUSTERS
    views = []
    for d in DIMS:
        centres = rng.uniform(0.1, 0.9, size=(N_CLUSTERS, d))
        x = centres[labels] + 0.03 * rng.normal(size=(N_SAMPLES, d))
        views.append(np.clip(x, 0.0, 1.0).astype(np.float32))
    return Dataset(name="mvbench-check", views=views, labels=labels.astype(np.int64), n_clusters=N_CLUSTERS)


def _mask(seed: int = 0) -> np.ndarray:
    """Half of the samples lose one view; every sample keeps at least one."""
    rng = np.random.default_rng(seed)
    mask = np.ones((N_SAMPLES, len(DIMS)), dtype=bool)
    rows = rng.permutation(N_SAMPLES)[: N_SAMPLES // 2]
    mask[rows, rng.integers(0, len(DIMS), size=len(rows))] = False
    return mask


def _fit(spec: MethodSpec, views: list[np.ndarray], mask: np.ndarray, seed: int, options: Mapping[str, Any],
         progress: Progress | None = None, checkpoint: TrialCheckpoint | None = None) -> MethodOutput:
    return spec.fit_predict(MethodInput(
        views=[torch.as_tensor(x) for x in views], mask=torch.as_tensor(mask), n_clusters=N_CLUSTERS,
        options=options, seed=seed, device=torch.device("cpu"), precision="fp32",
        progress=progress or QuietProgress(), dataset_name="mvbench-check", checkpoint=checkpoint))


def _fit_with_snapshots(spec: MethodSpec, views: list[np.ndarray], mask: np.ndarray, options: Mapping[str, Any],
                        folder: Path, progress: InterruptingProgress) -> tuple[MethodOutput, TrialCheckpoint]:
    """``_fit`` with seed 0 and a snapshot after every epoch in ``folder``."""
    checkpoint = TrialCheckpoint(folder, {"check": spec.name}, every=0.0)
    return _fit(spec, views, mask, 0, options, progress, checkpoint), checkpoint


def _runner_labels(spec: MethodSpec, options: Mapping[str, Any], relabel: bool) -> str:
    """The labels hash of one seeded trial through the runner on the tiny dataset, its truth
    optionally permuted."""
    from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved

    def load(_options: Mapping[str, Any], _data_dir: str) -> Dataset:
        data = tiny_dataset()
        if relabel:
            data.labels = np.random.default_rng(1).permutation(data.labels)
        return data

    # A registry of just this method, the check data and complete views.
    registry = Registry(plugin_manager=pluggy.PluginManager("mvbench"), methods={spec.name: spec},
                        datasets={"mvbench-check": DatasetSpec(name="mvbench-check", load=load,
                                                               description="tiny check data")},
                        missingness={"none": get_registry().mechanism("none")})
    resolved = resolve(Trial(method=spec.name, dataset="mvbench-check", seed=0,
                             method_options=dict(options)), registry)
    record = run_resolved(resolved, Settings(device="cpu"), DatasetCache(None))
    if record["status"] != "ok":
        raise MvbenchError(record.get("error", "the trial failed"))
    return record["labels_sha256"]


def _labels_problem(labels: Any) -> str:
    labels = np.asarray(labels)
    if labels.shape != (N_SAMPLES,):
        return f"returned labels of shape {labels.shape}; return one label per sample, shape ({N_SAMPLES},)"
    if not np.issubdtype(labels.dtype, np.integer):
        return f"returned labels of dtype {labels.dtype}; return integers (np.int64)"
    if labels.min() < 0 or labels.max() >= N_SAMPLES:
        return "returned labels outside 0..N-1; number the clusters from 0"
    return ""


def _attempt(plugin: str, name: str, run: Callable[[], str]) -> CheckResult:
    """Run one check; an exception is a failure that names it (the plugin must not crash)."""
    try:
        problem = run()
    except MvbenchError as exc:
        return CheckResult(plugin, name, False, str(exc))
    except Exception as exc:  # the point of the check: report, do not crash
        return CheckResult(plugin, name, False, f"raised {type(exc).__name__}: {exc}")
    if problem.startswith("skipped: "):
        return CheckResult(plugin, name, True, problem.removeprefix("skipped: "), skipped=True)
    return CheckResult(plugin, name, not problem, problem)


def check_method(spec: MethodSpec, options: Mapping[str, Any] | None = None) -> Iterator[CheckResult]:
    name = spec.name
    given = {**spec.smoke_options, **(options or {})}

    def declarations() -> str:
        names = [o.name for o in spec.options]
        if len(set(names)) != len(names):
            return "two options share a name; give each a distinct name"
        for variant, declared in spec.variants.items():
            resolve_options(spec.options, declared.options, owner=f"variant {variant!r}")
        for dataset, preset in spec.presets.items():
            resolve_options(spec.options, preset, owner=f"preset for {dataset!r}")
        if not isinstance(spec.version, int) or spec.version < 1:
            return f"version {spec.version!r} must be an integer >= 1"
        return ""

    yield _attempt(name, "option declarations, presets and variants resolve", declarations)

    def bad_option() -> str:
        try:
            resolve_options(spec.options, {"no_such_option_x": 1}, owner=f"method {name!r}")
        except MvbenchError:
            return ""
        return "an unknown option name was accepted; declare options with mvbench.options.Option"

    yield _attempt(name, "a misspelt option is a one-line error", bad_option)
    resolved = resolve_options(spec.options, given, owner=f"method {name!r}")
    data = tiny_dataset()
    mask = np.ones((N_SAMPLES, len(DIMS)), dtype=bool)
    first: dict[str, MethodOutput] = {}

    def labels() -> str:
        first["out"] = _fit(spec, data.views, mask, 0, resolved)
        problem = _labels_problem(first["out"].labels)
        if problem:
            return problem
        try:
            json.dumps(first["out"].extras, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
        except (TypeError, ValueError) as exc:
            return f"extras are not JSON-serialisable ({exc}); return lists and numbers"
        return ""

    yield _attempt(name, "labels: one integer label per sample", labels)

    def deterministic() -> str:
        if "out" not in first:
            return "skipped: the first run failed"
        again = _fit(spec, data.views, mask, 0, resolved)
        if not np.array_equal(np.asarray(again.labels), np.asarray(first["out"].labels)):
            return ("two runs with seed 0 gave different labels; draw every random number from "
                    "inp.seed_for(stream) (torch generators, numpy Generators, k-means seeds)")
        return ""

    yield _attempt(name, "the same seed gives the same labels", deterministic)

    def no_labels() -> str:
        if "out" not in first:
            return "skipped: the first run failed"
        # Through the runner, on two datasets that differ only in their ground truth: a method
        # that reached the labels by any side channel (a global, the dataset name) would differ.
        hashes = [_runner_labels(spec, given, relabel) for relabel in (False, True)]
        if hashes[0] != hashes[1]:
            return "predictions change with the ground truth; a method must never read the labels"
        return ""

    yield _attempt(name, "predictions do not depend on the ground truth", no_labels)

    def resumes() -> str:
        if "out" not in first:
            return "skipped: the first run failed"
        with tempfile.TemporaryDirectory() as folder:
            counter = InterruptingProgress()
            whole, _ = _fit_with_snapshots(spec, data.views, mask, resolved, Path(folder) / "whole", counter)
            if not any((Path(folder) / "whole").glob("*.pt")):
                return "skipped: takes no snapshots (its Trainer is not given inp.checkpoint)"
            if counter.epochs < 2:
                return "skipped: the smoke options train fewer than two epochs"
            try:  # interrupted at the end of the last epoch: after the snapshot of the one before
                _fit_with_snapshots(spec, data.views, mask, resolved, Path(folder) / "cut",
                                    InterruptingProgress(stop=counter.epochs))
            except KeyboardInterrupt:
                pass
            resumed, checkpoint = _fit_with_snapshots(spec, data.views, mask, resolved, Path(folder) / "cut",
                                                      InterruptingProgress())
        if not checkpoint.resumed:
            return "an interrupted trial did not resume from its snapshots"
        if (not np.array_equal(np.asarray(resumed.labels), np.asarray(whole.labels))
                or resumed.extras.get("loss_history") != whole.extras.get("loss_history")):
            return ("a trial resumed from its snapshots gave other labels or losses than the uninterrupted one; give the "
                    "Trainer every generator the training draws from, and keep no training state outside the "
                    "model, the optimiser and those generators")
        return ""

    yield _attempt(name, "an interrupted trial resumes to the same labels and losses (if it takes snapshots)",
                   resumes)
    if spec.handles_missing:
        holes = _mask()

        def nan_never_read() -> str:
            views_nan = [np.where(holes[:, [v]], x, np.nan).astype(np.float32) for v, x in enumerate(data.views)]
            views_big = [np.where(holes[:, [v]], x, 1e30).astype(np.float32) for v, x in enumerate(data.views)]
            a = _fit(spec, views_nan, holes, 0, resolved)
            b = _fit(spec, views_big, holes, 0, resolved)
            problem = _labels_problem(a.labels)
            if problem:
                return problem
            if not np.array_equal(np.asarray(a.labels), np.asarray(b.labels)):
                return ("labels depend on the values of missing rows: a method that handles missing "
                        "views must never read rows where inp.mask is False")
            return ""

        yield _attempt(name, "missing rows are never read (NaN vs 1e30 give the same labels)", nan_never_read)


def check_missingness(spec: MissingnessSpec, options: Mapping[str, Any] | None = None) -> Iterator[CheckResult]:
    name = spec.name
    data = tiny_dataset()

    def make(seed: int) -> np.ndarray:
        resolved = resolve_options(spec.options, options or {}, owner=f"missingness {name!r}")
        rng = np.random.RandomState(seed) if spec.legacy_seed else np.random.default_rng(seed)
        return np.asarray(spec.make_mask(data, resolved, rng))

    def invariants() -> str:
        mask = make(0)
        if mask.shape != (N_SAMPLES, len(DIMS)):
            return f"mask of shape {mask.shape}; return (N, V) = ({N_SAMPLES}, {len(DIMS)})"
        if mask.dtype != bool:
            return f"mask of dtype {mask.dtype}; return a bool array (True = observed)"
        empty = int((~mask.any(axis=1)).sum())
        if empty:
            return f"{empty} samples lost every view; every sample must keep at least one"
        return ""

    yield _attempt(name, "mask: (N, V) bool, every sample keeps a view", invariants)

    def deterministic() -> str:
        if not np.array_equal(make(3), make(3)):
            return "two masks from the same seed differ; draw only from the rng argument"
        return ""

    yield _attempt(name, "the same seed gives the same mask", deterministic)


def check_dataset(spec: DatasetSpec, data_dir: str) -> Iterator[CheckResult]:
    name = spec.name
    loaded: dict[str, Dataset] = {}

    def load() -> str:
        try:
            loaded["d"] = spec.load(resolve_options(spec.options, {}, owner=f"dataset {name!r}"), data_dir)
        except MvbenchError as exc:
            if "not there" in str(exc) or "not found" in str(exc):
                return f"skipped: {exc}"
            raise
        d = loaded["d"]
        if d.labels.min() < 0 or d.labels.max() >= d.n_clusters:
            return f"labels outside 0..{d.n_clusters - 1}; encode them as 0..K-1"
        for v, x in enumerate(d.views):
            if x.dtype != np.float32:
                return f"view {v} is {x.dtype}; return float32 arrays"
        facts = {"n": d.n_samples, "v": d.n_views, "k": d.n_clusters}
        for key, value in facts.items():
            if key in spec.summary and spec.summary[key] != value:
                return f"summary says {key} = {spec.summary[key]}, the data has {value}"
        return ""

    result = _attempt(name, "loads: float32 views, labels 0..K-1, facts as summarised", load)
    yield result


def check_plugin(registry: Registry, target: str, *, options: Mapping[str, Any] | None = None,
                 data_dir: str = ".", plugin_names: set[str] | None = None) -> list[CheckResult]:
    """Check ``target``: a method, variant, missingness or dataset name, or a plugin (module)
    name as registered, in which case everything it contributes is checked."""
    names = plugin_names or {target}
    owned = {(kind, n) for (kind, n), origin in registry.origin.items() if origin in names}
    results: list[CheckResult] = []
    if not owned:
        if target in registry.methods or target in registry.variant_names():
            owned = {("method", registry.method(target).name)}
        elif target in registry.missingness:
            owned = {("missingness mechanism", target)}
        else:
            owned = {("dataset", registry.dataset(target).name)}
    for kind, n in sorted(owned):
        if kind == "method":
            results += check_method(registry.methods[n], options)
        elif kind == "missingness mechanism":
            results += check_missingness(registry.missingness[n], options)
        else:
            results += check_dataset(registry.datasets[n], data_dir)
    return results
