"""An example third-party mvbench plugin.

It contributes a method (``best-view-kmeans``: k-means on each single view, keeping the
partition with the lowest normalised inertia, chosen without labels) and a missingness mechanism
(``drop-last-view``: a fraction of the samples loses the last view). Install it with
``pip install examples/mvbench-example-plugin``, or use it unpackaged with
``mvbench -p mvbench_example_plugin ...`` when the module is on the Python path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import Dataset, MethodInput, MethodOutput, MethodSpec, MissingnessSpec


def best_view_kmeans(inputs: MethodInput) -> MethodOutput:
    inputs.progress.stage("views", len(inputs.views))
    best_labels, best_score, scores = None, np.inf, []
    for x in inputs.views:
        features = StandardScaler().fit_transform(x.cpu().numpy())
        model = KMeans(inputs.n_clusters, n_init=inputs.options["n_init"],
                       random_state=inputs.seed % 2**32).fit(features)
        # Inertia per feature makes views of different widths comparable.
        score = model.inertia_ / features.shape[1]
        scores.append(float(score))
        if score < best_score:
            best_labels, best_score = model.labels_, score
        inputs.progress.epoch(float(score))
    return MethodOutput(labels=best_labels.astype(np.int64), extras={"view_scores": scores})


def drop_last_view(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    mask = np.ones((dataset.n_samples, dataset.n_views), dtype=bool)
    rows = rng.permutation(dataset.n_samples)[: int(round(options["rate"] * dataset.n_samples))]
    mask[rows, -1] = False
    return mask


@hookimpl
def mvbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="best-view-kmeans", fit_predict=best_view_kmeans,
        description="k-means on each view alone; keeps the view with the lowest inertia per feature.",
        options=(Option("n_init", "int", 5, "k-means restarts per view", minimum=1),),
    )]


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [MissingnessSpec(
        name="drop-last-view", make_mask=drop_last_view,
        description="A fraction of the samples loses the last view.",
        definition="round(rate*N) samples, chosen uniformly, lose the last view only",
        options=(Option("rate", "float", 0.3, "fraction of samples without the last view",
                        minimum=0.0, maximum=1.0),),
    )]
