"""A deliberately broken plugin for `mvbench check`: each contribution breaks one rule."""

from __future__ import annotations

import numpy as np

from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import MethodOutput, MethodSpec, MissingnessSpec

_calls = {"n": 0}


def _short_labels(inputs):
    return MethodOutput(labels=np.zeros(inputs.mask.shape[0] - 1, dtype=np.int64))


def _unseeded(inputs):
    _calls["n"] += 1  # a different answer on every call: not derived from the trial's seed
    return MethodOutput(labels=(np.arange(inputs.mask.shape[0]) + _calls["n"]) % inputs.n_clusters)


def _reads_missing_rows(inputs):
    x = inputs.views[0].cpu().numpy()
    # Uses every row, missing ones included: NaN there becomes label 0, 1e30 label 1.
    return MethodOutput(labels=(np.nan_to_num(x[:, 0], nan=-1.0) > 0).astype(np.int64))


def _empty_rows(dataset, options, rng):
    mask = np.ones((dataset.n_samples, dataset.n_views), dtype=bool)
    mask[0] = False
    return mask


@hookimpl
def mvbench_methods():
    return [
        MethodSpec(name="broken-length", fit_predict=_short_labels, description="returns N-1 labels"),
        MethodSpec(name="broken-seed", fit_predict=_unseeded, description="ignores its seed"),
        MethodSpec(name="broken-nan", fit_predict=_reads_missing_rows, description="reads missing rows",
                   handles_missing=True, options=(Option("k", "int", 1, "unused"),)),
    ]


@hookimpl
def mvbench_missingness():
    return [MissingnessSpec(name="broken-mask", make_mask=_empty_rows, description="empties a row",
                            definition="sample 0 loses every view")]
