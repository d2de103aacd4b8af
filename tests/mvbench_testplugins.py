"""Plugins used by the tests (registered with -p mvbench_testplugins or build_registry(objects=...))."""

from __future__ import annotations

import hashlib

import numpy as np

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


PROBE = MethodSpec(name="probe", fit_predict=_probe, description="test probe (ignores missing views)",
                   options=(Option("alpha", "float", 1.0, "a number"),
                            Option("flag", "bool", True, "a toggle"),
                            Option("widths", "list[int]", (4, 8), "a list"),
                            Option("mode", "str", "a", "a choice", choices=("a", "b"))),
                   presets={"synthetic": {"alpha": 2.0}})
PROBE_MISSING = MethodSpec(name="probe-missing", fit_predict=_probe, handles_missing=True,
                           description="test probe (handles missing views)")
DIVERGE = MethodSpec(name="diverge", fit_predict=_diverge, description="test: NaN loss")
INTERRUPT = MethodSpec(name="interrupt", fit_predict=_interrupt_on_seed, description="test: Ctrl-C",
                       options=(Option("interrupt_seed", "int", 1, "seed at which to interrupt"),))


@hookimpl
def mvbench_methods() -> list[MethodSpec]:
    return [PROBE, PROBE_MISSING, DIVERGE, INTERRUPT]
