"""Reading multi-view clustering data from MATLAB ``.mat`` files, in the layouts the field uses.

Views: a cell array of matrices (1 x V or V x 1, e.g. ``X`` or ``data``), numbered variables
``X1..Xn`` / ``V1..Vn``, or a single matrix ``X`` / ``data`` / ``fea``; each N x d or d x N,
dense or sparse. Labels: ``Y``, ``y``, ``gt``, ``gnd``, ``truth``, ``truelabel`` (possibly a
cell), ``label``, ``labels``; any integer coding, remapped to 0..K-1. Fixed missing-view
patterns: NaN rows, ``missing_matrix`` (1 = missing), ``ind`` (1 = present) and ``index``
(a cell of 1-based observed ids per view). MATLAB v5 files are read with scipy, v7.3 (HDF5)
files with h5py, undoing HDF5's transposition of MATLAB arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io
import scipy.sparse as sp

from mvbench.errors import MvbenchError

ORIENTATIONS = ("auto", "rows", "columns")
LABEL_NAMES = ("Y", "y", "gt", "gnd", "truth", "truelabel", "truelabels", "label", "labels")
SINGLE_VIEW_NAMES = ("X", "data", "fea")
_NUMBERED = re.compile(r"^([XVxv])(\d+)$")
_REF = re.compile(r"^([^{}\s]+)(?:\{(\d+)\})?$")
_MASK_NAMES = ("missing_matrix", "ind", "index")


@dataclass
class MatContents:
    """What :func:`load_mat` found. ``views`` are float32 (N, d_v) with missing rows set to 0;
    ``observed`` is the file's fixed (N, V) mask (True = observed), None when complete."""

    views: list[np.ndarray]
    labels: np.ndarray
    observed: np.ndarray | None
    view_names: list[str]
    label_name: str
    mask_names: list[str]
    orientation: str

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1


@dataclass
class _Cell:
    """A MATLAB cell array; ``items`` in MATLAB's linear (column-major) order."""

    items: list[Any]
    shape: tuple[int, ...]


def _is_matrix(x: Any) -> bool:
    return sp.issparse(x) or (isinstance(x, np.ndarray) and x.ndim >= 2 and min(x.shape[:2]) > 1)


def _is_numeric(x: Any) -> bool:
    return sp.issparse(x) or isinstance(x, np.ndarray)


def _describe(x: Any) -> str:
    if isinstance(x, _Cell):
        return f"cell {'x'.join(map(str, x.shape))}"
    kind = "sparse " if sp.issparse(x) else ""
    return f"{kind}{'x'.join(map(str, x.shape))} {x.dtype}"


# --- reading -------------------------------------------------------------------------------


def read_variables(path: str | Path) -> dict[str, Any]:
    """All usable variables of a .mat file: numeric arrays (MATLAB's shape), sparse matrices
    and cells; strings, structs and objects are left out."""
    path = Path(path)
    if not path.is_file():
        raise MvbenchError(f"{path}: no such file")
    if h5py.is_hdf5(path):
        return _read_hdf5(path)
    try:
        raw = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises assorted types for files that are not .mat
        raise MvbenchError(f"{path} is not a readable MATLAB .mat file "
                           f"({type(exc).__name__}: {exc})") from None
    found = {name: _from_scipy(value) for name, value in raw.items() if not name.startswith("__")}
    return {name: value for name, value in found.items() if value is not None}


def _from_scipy(value: Any) -> Any:
    if sp.issparse(value):
        return value
    if not isinstance(value, np.ndarray) or value.dtype.names:
        return None
    if value.dtype == object:
        return _Cell([_from_scipy(item) for item in value.ravel(order="F")], value.shape)
    return value if value.dtype.kind in "biuf" else None


def _read_hdf5(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as handle:
        found = {name: _from_hdf5(handle, obj) for name, obj in handle.items() if not name.startswith("#")}
    return {name: value for name, value in found.items() if value is not None}


def _from_hdf5(handle: h5py.File, obj: Any) -> Any:
    """One HDF5 object as a MATLAB value. MATLAB writes arrays column-major, so h5py sees them
    transposed; plain HDF5 files (no ``MATLAB_class`` attribute) are taken as they are."""
    attrs = obj.attrs
    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" not in attrs:
            return None
        jc = obj["jc"][()].astype(np.int64)
        data = obj["data"][()] if "data" in obj else np.zeros(0)
        ir = obj["ir"][()].astype(np.int64) if "ir" in obj else np.zeros(0, np.int64)
        return sp.csc_matrix((data, ir, jc), shape=(int(attrs["MATLAB_sparse"]), len(jc) - 1))
    matlab_class = attrs.get("MATLAB_class", b"")
    matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else str(matlab_class)
    if attrs.get("MATLAB_empty", 0) or matlab_class in ("char", "struct", "function_handle"):
        return None
    data = obj[()]
    if obj.dtype == h5py.ref_dtype:
        # C order over h5py's reversed shape is MATLAB's column-major order.
        items = [_from_hdf5(handle, handle[ref]) for ref in data.ravel()]
        return _Cell(items, data.shape[::-1])
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        return None
    return data.T if matlab_class else data


# --- views ---------------------------------------------------------------------------------


def _lookup(variables: dict[str, Any], ref: str, path: Path,
            option: str) -> tuple[Any, tuple[str, int | None]]:
    """Resolve ``NAME`` or ``NAME{i}`` (1-based cell element)."""
    match = _REF.match(ref.strip())
    if not match or match.group(1) not in variables:
        raise MvbenchError(f"{path}: no variable {ref.strip()!r} for {option}=; "
                           f"variables: {_inventory(variables)}")
    name, index = match.group(1), match.group(2)
    value = variables[name]
    if index is None:
        return value, (name, None)
    if not isinstance(value, _Cell) or not 1 <= int(index) <= len(value.items):
        raise MvbenchError(f"{path}: {ref.strip()!r} is not an element of a cell array "
                           f"({name} is {_describe(value)})")
    return value.items[int(index) - 1], (name, int(index) - 1)


def _inventory(variables: dict[str, Any]) -> str:
    return ", ".join(f"{name} ({_describe(value)})" for name, value in variables.items()) or "(none)"


def _view_groups(variables: dict[str, Any]) -> dict[str, list[tuple[str, int | None]]]:
    """Candidate view sets found without guidance, as lists of (variable, cell index) keys."""
    groups: dict[str, list[tuple[str, int | None]]] = {}
    for name, value in variables.items():
        if isinstance(value, _Cell) and value.items and all(_is_matrix(x) for x in value.items):
            groups[f"{name} ({_describe(value)})"] = [(name, i) for i in range(len(value.items))]
    numbered: dict[str, dict[int, str]] = {}
    for name, value in variables.items():
        match = _NUMBERED.match(name)
        if match and _is_matrix(value):
            numbered.setdefault(match.group(1), {})[int(match.group(2))] = name
    for prefix, by_number in numbered.items():
        if sorted(by_number) == list(range(1, len(by_number) + 1)):
            keys = [(by_number[i], None) for i in sorted(by_number)]
            groups[f"{prefix}1..{prefix}{len(keys)}"] = keys
    if not groups:
        for name in SINGLE_VIEW_NAMES:
            if name in variables and _is_matrix(variables[name]):
                groups[f"{name} ({_describe(variables[name])})"] = [(name, None)]
    return groups


def _auto_views(variables: dict[str, Any], path: Path) -> list[tuple[str, int | None]]:
    groups = _view_groups(variables)
    if not groups:
        raise MvbenchError(
            f"{path}: no views found (expected a cell array of matrices such as X or data, "
            f"X1..Xn or V1..Vn, or a matrix fea); variables: {_inventory(variables)}; "
            f"name them with views=NAME or views=A,B,C")
    if len(groups) > 1:
        raise MvbenchError(f"{path}: ambiguous views, candidates: {'; '.join(groups)}; "
                           f"pick one with views=NAME (or views=A,B,C)")
    return next(iter(groups.values()))


def _value(variables: dict[str, Any], key: tuple[str, int | None]) -> Any:
    value = variables[key[0]]
    return value if key[1] is None else value.items[key[1]]


def _key_name(key: tuple[str, int | None]) -> str:
    return key[0] if key[1] is None else f"{key[0]}{{{key[1] + 1}}}"


def _selected_views(variables: dict[str, Any], views: str | None, path: Path) -> list[tuple[str, int | None]]:
    if views is None:
        return _auto_views(variables, path)
    refs = [ref for ref in views.split(",") if ref.strip()]
    keys = []
    for ref in refs:
        value, key = _lookup(variables, ref, path, "views")
        if isinstance(value, _Cell) and len(refs) == 1:
            keys = [(key[0], i) for i in range(len(value.items))]
        elif isinstance(value, _Cell) or not _is_numeric(value):
            raise MvbenchError(f"{path}: {ref.strip()!r} is {_describe(value)}, not a matrix; "
                               f"list matrices in views=A,B,C or give one cell array")
        else:
            keys.append(key)
    if not keys or not all(_is_numeric(_value(variables, k)) for k in keys):
        raise MvbenchError(f"{path}: views={views!r} does not name any matrix")
    return keys


# --- labels --------------------------------------------------------------------------------


def _as_vector(value: Any) -> np.ndarray | None:
    if sp.issparse(value):
        value = value.toarray()
    if not isinstance(value, np.ndarray) or value.size == 0 or sum(s > 1 for s in value.shape) > 1:
        return None
    return value.ravel()


def _label_vector(value: Any, name: str, path: Path) -> np.ndarray:
    if isinstance(value, _Cell):
        vectors = [_as_vector(item) for item in value.items]
        if not vectors or any(v is None for v in vectors):
            raise MvbenchError(f"{path}: {name} ({_describe(value)}) does not hold label vectors")
        if any(not np.array_equal(vectors[0], v) for v in vectors[1:]):
            raise MvbenchError(f"{path}: the cell {name} holds {len(vectors)} different label vectors; "
                               f"pick one with labels={name}{{1}}")
        return vectors[0]
    vector = _as_vector(value)
    if vector is None:
        raise MvbenchError(f"{path}: {name} ({_describe(value)}) is not a label vector; "
                           f"name the labels with labels=NAME")
    return vector


def _find_labels(variables: dict[str, Any], labels: str | None, path: Path) -> tuple[np.ndarray, str]:
    if labels is not None:
        value, key = _lookup(variables, labels, path, "labels")
        return _label_vector(value, _key_name(key), path), _key_name(key)
    names = [name for name in LABEL_NAMES if name in variables]
    if not names:
        raise MvbenchError(f"{path}: no labels found (looked for {', '.join(LABEL_NAMES)}); "
                           f"variables: {_inventory(variables)}; name them with labels=NAME")
    vectors = [_label_vector(variables[name], name, path) for name in names]
    # The same labels stored twice (say 0- and 1-based) are not ambiguous.
    codes = [_encode_labels(v, name, path) for v, name in zip(vectors, names)]
    if any(not np.array_equal(codes[0], c) for c in codes[1:]):
        raise MvbenchError(f"{path}: ambiguous labels, candidates: {', '.join(names)} differ; "
                           f"pick one with labels=NAME")
    return vectors[0], names[0]


def _encode_labels(raw: np.ndarray, name: str, path: Path) -> np.ndarray:
    values = raw.astype(np.float64)
    if not np.isfinite(values).all() or not np.array_equal(values, np.round(values)):
        raise MvbenchError(f"{path}: labels {name} are not all integers; name other labels with labels=NAME")
    _, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64)


# --- orientation and masks -----------------------------------------------------------------


def _orient(arrays: list[Any], names: list[str], n: int, orientation: str, label_name: str,
            path: Path) -> tuple[list[Any], str]:
    arrays = [x.reshape(x.shape[0], -1) if not sp.issparse(x) and x.ndim > 2 else x for x in arrays]
    fits = []
    for x, name in zip(arrays, names):
        fit = {o for o, size in (("rows", x.shape[0]), ("columns", x.shape[1])) if size == n}
        if not fit:
            raise MvbenchError(f"{path}: view {name} is {x.shape[0]} x {x.shape[1]} but there are {n} "
                               f"labels ({label_name}); neither dimension matches the label count")
        if orientation != "auto" and orientation not in fit:
            raise MvbenchError(f"{path}: view {name} is {x.shape[0]} x {x.shape[1]}, which does not have "
                               f"{n} {orientation}; use orientation=auto")
        fits.append(fit)
    if orientation == "auto":
        definite = {next(iter(f)) for f in fits if len(f) == 1}
        if any(len(f) == 2 for f in fits):
            if len(definite) != 1:
                raise MvbenchError(f"{path}: cannot tell samples from features in the square "
                                   f"{n} x {n} views; set orientation=rows|columns")
            fits = [f if len(f) == 1 else definite for f in fits]
        chosen = [next(iter(f)) for f in fits]
    else:
        chosen = [orientation] * len(arrays)
    oriented = [x.T if o == "columns" else x for x, o in zip(arrays, chosen)]
    return oriented, chosen[0] if len(set(chosen)) == 1 else "mixed"


def _to_float32(x: Any) -> np.ndarray:
    dense = x.toarray() if sp.issparse(x) else np.asarray(x)
    return np.ascontiguousarray(dense, dtype=np.float32)


def _orient_mask(mask: Any, n: int, v: int, name: str, path: Path) -> np.ndarray:
    mask = mask.toarray() if sp.issparse(mask) else np.asarray(mask)
    if mask.shape == (n, v):
        return mask != 0
    if mask.shape == (v, n):
        return mask.T != 0
    raise MvbenchError(f"{path}: {name} is {_describe(mask)}, expected {n} x {v} (samples x views)")


def _file_masks(variables: dict[str, Any], n: int, v: int, path: Path) -> tuple[np.ndarray | None, list[str]]:
    """Observed mask over the file's own views from explicit mask variables (None if none)."""
    observed, used = np.ones((n, v), bool), []
    if "missing_matrix" in variables:
        observed &= ~_orient_mask(variables["missing_matrix"], n, v, "missing_matrix", path)
        used.append("missing_matrix")
    if "ind" in variables and _is_numeric(variables["ind"]):
        observed &= _orient_mask(variables["ind"], n, v, "ind", path)
        used.append("ind")
    index = variables.get("index")
    if (isinstance(index, _Cell) and len(index.items) == v
            and all(_as_vector(x) is not None for x in index.items)):
        present = np.zeros((n, v), bool)
        for j, ids in enumerate(index.items):
            ids = _as_vector(ids).astype(np.int64)
            if ids.min() < 1 or ids.max() > n:
                raise MvbenchError(f"{path}: index{{{j + 1}}} holds ids outside 1..{n}")
            present[ids - 1, j] = True
        observed &= present
        used.append("index")
    return (observed if used else None), used


def _mask_columns(keys: list[tuple[str, int | None]], file_keys: list[tuple[str, int | None]],
                  path: Path) -> list[int]:
    """Positions of the selected views among the file's own views, which the masks refer to."""
    missing = [_key_name(k) for k in keys if k not in file_keys]
    if missing:
        raise MvbenchError(f"{path}: the file's missing-view mask refers to the views "
                           f"{', '.join(map(_key_name, file_keys))}; {', '.join(missing)} is not one of them")
    return [file_keys.index(k) for k in keys]


# --- entry point ---------------------------------------------------------------------------


def _check_values(views: list[np.ndarray], names: list[str], path: Path) -> None:
    """Inf anywhere, or NaN in a row that also holds numbers, is an error: such a row is neither
    data nor a missing row, and would otherwise be trained on or silently dropped."""
    for name, x in zip(names, views):
        nan = np.isnan(x)
        partial = int((nan.any(axis=1) & ~nan.all(axis=1)).sum())
        if partial:
            raise MvbenchError(f"{path}: view {name} has NaN in {partial} rows that also hold numbers; "
                               f"a missing row must be entirely NaN (or be marked in a mask variable): "
                               f"fix or impute those cells")
        infinite = int(np.isinf(x).any(axis=1).sum())
        if infinite:
            raise MvbenchError(f"{path}: view {name} has inf in {infinite} rows; replace those values "
                               f"with finite ones or mark the rows missing (entirely NaN)")


def load_mat(path: str | Path, *, views: str | None = None, labels: str | None = None,
             orientation: str = "auto") -> MatContents:
    """Load views, labels and any fixed missing-view mask from a .mat file.

    ``views`` names one cell array, or a comma-separated list of matrices / cell elements
    (``X1,X2,X5`` or ``X{2},X{1}``) in the order wanted; ``labels`` names the label variable
    (``truelabel{1}`` for a cell element); ``orientation`` is ``rows`` (N x d), ``columns``
    (d x N) or ``auto`` (from the label count).
    """
    path = Path(path)
    if orientation not in ORIENTATIONS:
        raise MvbenchError(f"orientation={orientation!r} is not one of {', '.join(ORIENTATIONS)}")
    variables = read_variables(path)
    keys = _selected_views(variables, views, path)
    names = [_key_name(k) for k in keys]
    raw_labels, label_name = _find_labels(variables, labels, path)
    y = _encode_labels(raw_labels, label_name, path)
    n = len(y)
    arrays, found_orientation = _orient([_value(variables, k) for k in keys], names, n, orientation,
                                        label_name, path)
    dense = [_to_float32(x) for x in arrays]

    _check_values(dense, names, path)
    # A row that is entirely NaN is a missing row (the layout of the fixed-mask files).
    nan_rows = np.stack([np.isnan(x).all(axis=1) & (x.shape[1] > 0) for x in dense], axis=1)
    file_mask, mask_names = None, []
    if any(name in variables for name in _MASK_NAMES):
        file_keys = _auto_views(variables, path)
        file_mask, mask_names = _file_masks(variables, n, len(file_keys), path)
    if file_mask is not None:
        file_mask = file_mask[:, _mask_columns(keys, file_keys, path)]
        clash = file_mask & nan_rows
        if clash.any():
            v = int(np.argmax(clash.any(axis=0)))
            raise MvbenchError(f"{path}: view {names[v]} has {int(clash[:, v].sum())} rows that "
                               f"{'/'.join(mask_names)} marks observed but that hold NaN")
    observed = ~nan_rows if file_mask is None else file_mask
    if nan_rows.any():
        mask_names.append("NaN rows")
    if observed.all():
        observed = None
    else:
        empty = int((~observed.any(axis=1)).sum())
        if empty:
            raise MvbenchError(f"{path}: {empty} samples have no observed view "
                               f"({'/'.join(mask_names)}); every sample needs one")
        for v, x in enumerate(dense):
            x[~observed[:, v]] = 0.0
    return MatContents(dense, y, observed, names, label_name, mask_names if observed is not None else [],
                       found_orientation)
