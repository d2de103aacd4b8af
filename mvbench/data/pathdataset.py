"""Datasets given by path (``--dataset path/to/file.mat`` or ``mat:path``), without a manifest."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mvbench.data.datadir import resolve_data_dir
from mvbench.errors import MvbenchError
from mvbench.data.matfile import ORIENTATIONS, load_mat
from mvbench.options import Option, resolve_options
from mvbench.data.preprocessing import KINDS, preprocess_option, preprocess_views
from mvbench.specs import Dataset

PATH_OPTIONS = (
    Option("views", "str", None, "variable holding the views: one cell array (X) or matrices in "
           "order (X1,X2,X5); default: found automatically"),
    Option("labels", "str", None, "label variable (Y, or truelabel{1} for a cell element); "
           "default: found automatically"),
    Option("orientation", "str", "auto", "rows = N x d, columns = d x N, auto = from the label count",
           choices=ORIENTATIONS),
    preprocess_option("none", "per-view feature scaling; none = the values as stored in the file "
                      "(README: why)"),
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


def describe_path(path: str | os.PathLike[str], options: Mapping[str, Any] | None = None,
                  data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """What a run on this file will use, one line each: the file, the layout found (views,
    labels, orientation), each view's size and value range, the missing-view mask and the
    preprocessing that will be applied (options: PATH_OPTIONS, as ``--set dataset.NAME=VALUE``)."""
    file = find_path(str(path).removeprefix("mat:"), data_dir)
    opts = resolve_options(PATH_OPTIONS, options, owner=f"dataset file {file.name!r}")
    contents = load_mat(file, views=opts["views"], labels=opts["labels"], orientation=opts["orientation"])
    n, observed = contents.n_samples, contents.observed
    layout = {"rows": "N x d", "columns": "d x N, transposed", "mixed": "some views transposed"}
    lines = [f"file: {file.resolve()}",
             f"layout: {len(contents.views)} view{'s' * (len(contents.views) != 1)} "
             f"({', '.join(contents.view_names)}); labels "
             f"{contents.label_name}: {n} samples, {contents.n_clusters} classes; orientation "
             f"{contents.orientation} ({layout[contents.orientation]})"]
    for v, (name, x) in enumerate(zip(contents.view_names, contents.views)):
        rows = x if observed is None else x[observed[:, v]]
        values = (f"values in [{rows.min():.4g}, {rows.max():.4g}], "
                  f"{np.count_nonzero(rows) / rows.size:.1%} non-zero" if rows.size else "no observed values")
        lines.append(f"view {name}: {x.shape[1]} features, {values}")
    if observed is None:
        lines.append("missing views: none (every sample has every view)")
    else:
        lines.append(f"missing views: {'/'.join(contents.mask_names)} marks {int((~observed).any(axis=1).sum())} "
                     f"of {n} samples incomplete; used with --missing file (a file given by path runs with "
                     f"--missing none unless told, its missing rows then zeros taken as data)")
    scaling = opts["preprocess"]
    lines.append(f"preprocessing: {scaling} ({KINDS[scaling]})"
                 + (" - the default for a file given by path; --set dataset.preprocess=minmax|standardize "
                    "scales each feature of each view" if scaling == "none" else ""))
    return lines
