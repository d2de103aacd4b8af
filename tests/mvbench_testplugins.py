"""Plugins used by the tests (registered with -p mvbench_testplugins or build_registry(objects=...))."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import MethodInput, MethodOutput, MethodSpec


def _probe(inputs: MethodInput) -> MethodOutput:
    """Reports what it was given: the mask's hash and whether missing rows are NaN."""
    mask = inputs.mask.cpu().numpy()
    views = [x.cpu().numpy() for x in inputs.views]
    nan_in_missing = all(np.isnan(x[~mask[:, v]]).all() for v, x in enumerate(views))
    nan_in_observed = any(np.isnan(x[mask[:, v]]).any() for v, x in enumerate(views))
    inputs.progress.stage("probe", 1)
    inputs.progress.epoch(0.0)
    return MethodOutput(
        labels=np.zeros(mask.shape[0], dtype=np.int64),
        extras={"mask_sha256": hashlib.sha256(mask.tobytes()).hexdigest(),
                "nan_in_missing": bool(nan_in_missing), "nan_in_observed": bool(nan_in_observed),
                "observed_range": [[float(x[mask[:, v]].min()), float(x[mask[:, v]].max())]
                                   for v, x in enumerate(views)],
                "options": dict(inputs.options)},
    )


def _diverge(inputs: MethodInput) -> MethodOutput:
    inputs.progress.stage("train", 3)
    inputs.progress.epoch(1.0)
    inputs.progress.epoch(float("nan"))
    raise AssertionError("unreachable: the progress reporter rejects a NaN loss")


def _interrupt_on_seed(inputs: MethodInput) -> MethodOutput:
    if inputs.seed == inputs.options["interrupt_seed"]:
        raise KeyboardInterrupt
    return MethodOutput(labels=np.arange(inputs.mask.shape[0]) % inputs.n_clusters)


def _one_cluster(inputs: MethodInput) -> MethodOutput:
    """A collapse: every sample in cluster 0, with a loss that moved and healthy diagnostics."""
    n = inputs.mask.shape[0]
    embedding = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
    onehot = torch.eye(inputs.n_clusters)[torch.arange(n) % inputs.n_clusters]
    return MethodOutput(labels=np.zeros(n, dtype=np.int64),
                        extras={"loss_history": {"train": [3.0, 2.0, 1.5, 1.2, 1.1]},
                                DIAGNOSTICS_KEY: diagnostics(embedding, onehot)})


def _constant_embedding(inputs: MethodInput) -> MethodOutput:
    """A collapse that the labels do not show: every cluster used, every embedding the same."""
    n = inputs.mask.shape[0]
    onehot = torch.eye(inputs.n_clusters)[torch.arange(n) % inputs.n_clusters]
    return MethodOutput(labels=np.arange(n) % inputs.n_clusters,
                        extras={DIAGNOSTICS_KEY: diagnostics(torch.ones(n, 4), onehot)})


PROBE = MethodSpec(name="probe", fit_predict=_probe, description="test probe (ignores missing views)",
                   options=(Option("alpha", "float", 1.0, "a number"),
                            Option("flag", "bool", True, "a toggle"),
                            Option("widths", "list[int]", (4, 8), "a list"),
                            Option("mode", "str", "a", "a choice", choices=("a", "b"))),
                   presets={"synthetic": {"alpha": 2.0}})
PROBE_MISSING = MethodSpec(name="probe-missing", fit_predict=_probe, handles_missing=True,
                           description="test probe (handles missing views)")
DIVERGE = MethodSpec(name="diverge", fit_predict=_diverge, description="test: NaN loss")
ONE_CLUSTER = MethodSpec(name="one-cluster", fit_predict=_one_cluster, description="test: one cluster")
CONSTANT_EMBEDDING = MethodSpec(name="constant-embedding", fit_predict=_constant_embedding,
                                description="test: constant embeddings")
INTERRUPT = MethodSpec(name="interrupt", fit_predict=_interrupt_on_seed, description="test: Ctrl-C",
                       options=(Option("interrupt_seed", "int", 1, "seed at which to interrupt"),))


@hookimpl
def mvbench_methods() -> list[MethodSpec]:
    return [PROBE, PROBE_MISSING, DIVERGE, INTERRUPT, ONE_CLUSTER, CONSTANT_EMBEDDING]
