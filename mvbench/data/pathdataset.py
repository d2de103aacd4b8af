"""Datasets given by path (``--dataset path/to/file.mat`` or ``mat:path``), without a manifest."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mvbench.data.datadir import resolve_data_dir
from mvbench.errors import MvbenchError
from mvbench.data.matfile import ORIENTATIONS, load_mat
from mvbench.options import Option, resolve_options
from mvbench.data.preprocessing import KINDS, preprocess_views
from mvbench.specs import Dataset

PATH_OPTIONS = (
    Option("views", "str", None, "variable holding the views: one cell array (X) or matrices in "
           "order (X1,X2,X5); default: found automatically"),
    Option("labels", "str", None, "label variable (Y, or truelabel{1} for a cell element); "
           "default: found automatically"),
    Option("orientation", "str", "auto", "rows = N x d, columns = d x N, auto = from the label count",
           choices=ORIENTATIONS),
    Option("preprocess", "str", "none", "per-view feature scaling", choices=tuple(KINDS)),
)


def find_path(path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file as given, else relative to the data directory."""
    given = Path(path).expanduser()
    if given.is_file():
        return given
    inside = resolve_data_dir(data_dir) / given
    if not given.is_absolute() and inside.is_file():
        return inside
    raise MvbenchError(f"dataset file {str(path)!r} not found (also looked in {inside.parent}); "
                       f"check the path")


def dataset_from_path(path: str | os.PathLike[str], options: Mapping[str, Any] | None = None,
                      data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load any .mat file in a supported layout as a :class:`Dataset` (options: PATH_OPTIONS)."""
    file = find_path(str(path).removeprefix("mat:"), data_dir)
    opts = resolve_options(PATH_OPTIONS, options, owner=f"dataset file {file.name!r}")
    contents = load_mat(file, views=opts["views"], labels=opts["labels"], orientation=opts["orientation"])
    views, steps = preprocess_views(contents.views, opts["preprocess"], contents.observed)
    return Dataset(
        name=file.name,
        views=views,
        labels=contents.labels,
        n_clusters=contents.n_clusters,
        source=f"{file.resolve()} (views {','.join(contents.view_names)}; labels {contents.label_name})",
        preprocessing=steps,
        observed=contents.observed,
        raw_views=contents.views,
        scaling=opts["preprocess"],
    )
