"""Method ``kmeans``: k-means on the concatenation of the standardised views.

The reference row of every pipeline: if a deep method does not beat it, something is off.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from mvbench.hookspecs import method_hook
from mvbench.options import Option
from mvbench.specs import MethodInput, MethodOutput, MethodSpec


def concat_kmeans(inputs: MethodInput) -> MethodOutput:
    opts = inputs.options
    inputs.progress.stage("kmeans", 1)
    parts = [x.detach().cpu().numpy().astype(np.float64) for x in inputs.views]
    if opts["standardize"]:
        # Standardising per view keeps a wide view from drowning the narrow ones in the distance.
        parts = [StandardScaler().fit_transform(x) for x in parts]
    features = np.concatenate(parts, axis=1)
    model = KMeans(n_clusters=inputs.n_clusters, n_init=opts["n_init"], max_iter=opts["max_iter"],
                   random_state=inputs.seed_for("kmeans") % 2**32)
    labels = model.fit_predict(features)
    inputs.progress.epoch(float(model.inertia_))
    return MethodOutput(labels=labels.astype(np.int64), extras={"inertia": float(model.inertia_)})


SPEC = MethodSpec(
    name="kmeans",
    fit_predict=concat_kmeans,
    description="k-means (scikit-learn) on the concatenation of the per-view standardised features.",
    citation="Lloyd, S. (1982). Least squares quantization in PCM. IEEE Trans. Inf. Theory 28(2).",
    options=(
        Option("n_init", "int", 10, "k-means restarts; the lowest inertia wins", minimum=1),
        Option("max_iter", "int", 300, "Lloyd iterations per restart", minimum=1),
        Option("standardize", "bool", True, "z-score each feature of each view before concatenating"),
    ),
    default_priority=1,
    # 2: the k-means stream comes from seed_for("kmeans") instead of the trial seed itself.
    version=2,
)


mvbench_methods = method_hook(SPEC)
