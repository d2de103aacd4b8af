"""mvbench.data.matfile on small files in every supported layout, written by the tests."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from mvbench.errors import MvbenchError
from mvbench.data.matfile import load_mat
from mvbench.data.pathdataset import dataset_from_path
from mvbench.data.preprocessing import preprocess_views

N, DIMS, K = 12, (5, 3, 7), 3


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(N, d)) for d in DIMS]
    labels = np.repeat(np.arange(K), N // K)
    return views, labels


def cell(items, shape):
    out = np.empty(shape, dtype=object)
    for i, item in enumerate(items):
        out.flat[i] = item
    return out


def save(path, **variables):
    scipy.io.savemat(path, variables)
    return path


def check(contents, views, labels):
    assert [x.dtype for x in contents.views] == [np.float32] * len(views)
    for got, want in zip(contents.views, views):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_array_equal(contents.labels, labels)
    assert contents.labels.dtype == np.int64


@pytest.mark.parametrize("shape", [(1, 3), (3, 1)])
def test_cell_row_and_column(tmp_path, data, shape):
    views, labels = data
    path = save(tmp_path / "c.mat", X=cell(views, shape), Y=(labels + 1)[:, None])
    contents = load_mat(path)
    check(contents, views, labels)
    assert contents.view_names == ["X{1}", "X{2}", "X{3}"]
    assert contents.label_name == "Y" and contents.observed is None and contents.orientation == "rows"


@pytest.mark.parametrize("prefix", ["X", "V"])
def test_numbered_variables_in_numeric_order(tmp_path, data, prefix):
    views, labels = data
    # 10 views so that lexical order (X1, X10, X2) would differ from numeric order
    many = [np.full((N, 2), float(i)) for i in range(10)]
    path = save(tmp_path / "n.mat", **{f"{prefix}{i + 1}": x for i, x in enumerate(many)}, y=labels[None, :])
    contents = load_mat(path)
    assert [x[0, 0] for x in contents.views] == list(range(10))
    assert contents.view_names[:3] == [f"{prefix}1", f"{prefix}2", f"{prefix}3"]


def test_data_cell_d_by_n_with_label_cell(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "d.mat", data=cell([x.T for x in views], (3, 1)),
                truelabel=cell([labels[:, None] + 1] * 3, (3, 1)))
    contents = load_mat(path)
    check(contents, views, labels)
    assert contents.orientation == "columns" and contents.label_name == "truelabel"


def test_explicit_orientation_is_checked(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "d.mat", X=cell([x.T for x in views], (1, 3)), Y=labels)
    check(load_mat(path, orientation="columns"), views, labels)
    with pytest.raises(MvbenchError, match="orientation=auto"):
        load_mat(path, orientation="rows")


def test_sparse_views_are_densified(tmp_path, data):
    views, labels = data
    sparse = [sp.random(N, d, density=0.3, random_state=i, format="csc") for i, d in enumerate(DIMS)]
    path = save(tmp_path / "s.mat", X=cell(sparse, (1, 3)), Y=labels)
    contents = load_mat(path)
    check(contents, [x.toarray() for x in sparse], labels)


def test_fea_single_view_and_gapped_labels(tmp_path, data):
    views, _ = data
    raw = np.array([7, 7, 3, 3, 10, 10, 3, 7, 10, 10, 3, 7])
    path = save(tmp_path / "f.mat", fea=views[0], gnd=raw[:, None])
    contents = load_mat(path)
    assert len(contents.views) == 1 and contents.n_clusters == 3
    np.testing.assert_array_equal(contents.labels, [1, 1, 0, 0, 2, 2, 0, 1, 2, 2, 0, 1])


@pytest.mark.parametrize("name", ["Y", "y", "gt", "truth", "label", "labels"])
@pytest.mark.parametrize("base, as_row", [(0, True), (1, False), (1, True), (0, False)])
def test_label_variants(tmp_path, data, name, base, as_row):
    views, labels = data
    raw = labels + base
    path = save(tmp_path / "l.mat", X=cell(views, (1, 3)), **{name: raw[None, :] if as_row else raw[:, None]})
    check(load_mat(path), views, labels)


def test_view_order_and_cell_elements(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "o.mat", **{f"X{i + 1}": x for i, x in enumerate(views)}, Y=labels)
    contents = load_mat(path, views="X3, X1")
    check(contents, [views[2], views[0]], labels)
    path = save(tmp_path / "e.mat", X=cell(views, (1, 3)), Y=labels)
    assert load_mat(path, views="X{2},X{1}").view_names == ["X{2}", "X{1}"]


def test_ambiguous_views_name_the_option(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "a.mat", X=cell(views, (1, 3)), X1=views[0], X2=views[1], Y=labels)
    with pytest.raises(MvbenchError, match=r"ambiguous views.*X \(cell 1x3\).*X1\.\.X2.*views=NAME"):
        load_mat(path)
    assert len(load_mat(path, views="X").views) == 3
    assert len(load_mat(path, views="X1,X2").views) == 2


def test_ambiguous_labels_name_the_option(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "a.mat", X=cell(views, (1, 3)), Y=labels, gt=labels[::-1].copy())
    with pytest.raises(MvbenchError, match=r"ambiguous labels.*Y, gt.*labels=NAME"):
        load_mat(path)
    np.testing.assert_array_equal(load_mat(path, labels="gt").labels, labels[::-1])
    # two candidates with the same content are not ambiguous
    same = save(tmp_path / "s.mat", X=cell(views, (1, 3)), Y=labels, label=labels + 1)
    check(load_mat(same), views, labels)


def test_label_cell_with_different_vectors(tmp_path, data):
    views, labels = data
    two = cell([labels, labels[::-1].copy()], (1, 2))
    path = save(tmp_path / "c.mat", X=cell(views, (1, 3)), truelabel=two)
    with pytest.raises(MvbenchError, match=r"truelabel\{1\}"):
        load_mat(path)
    np.testing.assert_array_equal(load_mat(path, labels="truelabel{2}").labels, labels[::-1])


def test_square_views_need_orientation(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, N))
    path = save(tmp_path / "q.mat", X=cell([x, x.T.copy()], (1, 2)), Y=np.arange(N) % K)
    with pytest.raises(MvbenchError, match=r"orientation=rows\|columns"):
        load_mat(path)
    np.testing.assert_allclose(load_mat(path, orientation="columns").views[0], x.T, rtol=1e-6)
    # one non-square view settles the orientation of the square ones (as in Cora)
    wide = save(tmp_path / "w.mat", X=cell([x, rng.normal(size=(N, 4))], (1, 2)), Y=np.arange(N) % K)
    assert load_mat(wide).orientation == "rows"


def test_clear_errors(tmp_path, data):
    views, labels = data
    with pytest.raises(MvbenchError, match="no such file"):
        load_mat(tmp_path / "absent.mat")
    (tmp_path / "text.mat").write_text("this is not a MATLAB file at all, just text" * 10)
    with pytest.raises(MvbenchError, match="not a readable MATLAB"):
        load_mat(tmp_path / "text.mat")
    with pytest.raises(MvbenchError, match="no views found.*views=NAME"):
        load_mat(save(tmp_path / "nv.mat", Y=labels, note=np.arange(3)))
    with pytest.raises(MvbenchError, match="no labels found.*labels=NAME"):
        load_mat(save(tmp_path / "nl.mat", X=cell(views, (1, 3))))
    with pytest.raises(MvbenchError, match="neither dimension matches the label count"):
        load_mat(save(tmp_path / "bad.mat", X=cell(views, (1, 3)), Y=labels[:-1]))
    with pytest.raises(MvbenchError, match="no variable 'Z'"):
        load_mat(save(tmp_path / "ok.mat", X=cell(views, (1, 3)), Y=labels), views="Z")


# --- fixed missing-view patterns -----------------------------------------------------------


def test_nan_columns_and_index_cells(tmp_path, data):
    views, labels = data
    observed = np.ones((N, 3), bool)
    observed[[0, 5], 0] = observed[[1, 2, 3], 2] = False
    stored = [np.where(observed[:, v:v + 1], x, np.nan).T for v, x in enumerate(views)]
    index = cell([np.flatnonzero(observed[:, v])[:, None] + 1 for v in range(3)], (1, 3))
    path = save(tmp_path / "p.mat", data=cell(stored, (3, 1)), index=index,
                truelabel=cell([labels[:, None] + 1] * 3, (3, 1)), MissingStatus=np.zeros((N, 3)))
    contents = load_mat(path)
    np.testing.assert_array_equal(contents.observed, observed)
    assert not any(np.isnan(x).any() for x in contents.views)
    assert (contents.views[0][[0, 5]] == 0).all()
    assert contents.mask_names == ["index", "NaN rows"]


def test_missing_matrix_and_ind(tmp_path, data):
    views, labels = data
    missing = np.zeros((N, 3), np.uint8)
    missing[[4, 7], 1] = 1
    zeroed = [np.where(missing[:, v:v + 1] == 1, 0.0, x) for v, x in enumerate(views)]
    path = save(tmp_path / "m.mat", X=cell(zeroed, (1, 3)), Y=labels, missing_matrix=missing)
    np.testing.assert_array_equal(load_mat(path).observed, missing == 0)
    path = save(tmp_path / "i.mat", V1=zeroed[0], V2=zeroed[1], V3=zeroed[2], label=labels, ind=1 - missing)
    contents = load_mat(path)
    np.testing.assert_array_equal(contents.observed, missing == 0)
    # a selection of views takes the matching mask columns
    np.testing.assert_array_equal(load_mat(path, views="V2,V1").observed, (missing == 0)[:, [1, 0]])


def test_all_zero_rows_are_not_missing(tmp_path, data):
    views, labels = data
    views[1][3] = 0.0
    assert load_mat(save(tmp_path / "z.mat", X=cell(views, (1, 3)), Y=labels)).observed is None


def test_mask_contradictions_are_errors(tmp_path, data):
    views, labels = data
    stored = [x.copy() for x in views]
    stored[0][2] = np.nan
    path = save(tmp_path / "c.mat", X=cell(stored, (1, 3)), Y=labels, missing_matrix=np.zeros((N, 3)))
    with pytest.raises(MvbenchError, match="marks observed but that hold NaN"):
        load_mat(path)
    empty = np.zeros((N, 3))
    empty[0] = 1
    with pytest.raises(MvbenchError, match="1 samples have no observed view"):
        load_mat(save(tmp_path / "e.mat", X=cell(views, (1, 3)), Y=labels, missing_matrix=empty))


# --- MATLAB v7.3 (HDF5) --------------------------------------------------------------------


def write_v73(path, variables):
    """Write what MATLAB's save -v7.3 writes: column-major arrays (h5py sees them transposed),
    cells as references into #refs#, sparse matrices as data/ir/jc groups."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(group, name, value):
            if isinstance(value, list):
                ref_array = np.empty((len(value), 1), dtype=h5py.ref_dtype)  # MATLAB 1 x V
                for i, item in enumerate(value):
                    ref_array[i, 0] = put(refs, f"{name}_{i}", item).ref
                dset = group.create_dataset(name, data=ref_array)
                dset.attrs["MATLAB_class"] = np.bytes_("cell")
                return dset
            if sp.issparse(value):
                csc = sp.csc_matrix(value)
                sub = group.create_group(name)
                sub.create_dataset("data", data=csc.data)
                sub.create_dataset("ir", data=csc.indices.astype(np.uint64))
                sub.create_dataset("jc", data=csc.indptr.astype(np.uint64))
                sub.attrs["MATLAB_class"] = np.bytes_("double")
                sub.attrs["MATLAB_sparse"] = np.uint64(csc.shape[0])
                return sub
            dset = group.create_dataset(name, data=np.asarray(value).T)
            dset.attrs["MATLAB_class"] = np.bytes_("double")
            return dset

        for name, value in variables.items():
            put(f, name, value)
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116))
    return path


def test_v73_cell_numbered_and_sparse(tmp_path, data):
    views, labels = data
    contents = load_mat(write_v73(tmp_path / "c.mat", {"X": views, "Y": (labels + 1)[None, :]}))
    check(contents, views, labels)
    numbered = {"X1": views[0], "X2": views[1], "gt": labels[:, None]}
    contents = load_mat(write_v73(tmp_path / "n.mat", numbered))
    check(contents, views[:2], labels)
    sparse = sp.random(N, 9, density=0.4, random_state=3)
    contents = load_mat(write_v73(tmp_path / "s.mat", {"X": [sparse, views[0]], "Y": labels[:, None]}))
    check(contents, [sparse.toarray(), views[0]], labels)


def test_v73_d_by_n_with_nan_and_index(tmp_path, data):
    views, labels = data
    stored = [x.T.copy() for x in views]
    stored[1][:, 4] = np.nan
    ids = np.arange(1, N + 1)[:, None]
    index = [ids, np.delete(ids, 4, axis=0), ids]
    contents = load_mat(write_v73(tmp_path / "p.mat", {"data": stored, "index": index,
                                                       "truelabel": [labels[:, None] + 1] * 3}))
    assert contents.orientation == "columns"
    assert contents.observed is not None and (~contents.observed).sum() == 1 and not contents.observed[4, 1]
    np.testing.assert_allclose(contents.views[0], views[0], rtol=1e-6)


# --- path datasets and preprocessing -------------------------------------------------------


def test_dataset_from_path_with_options(tmp_path, data):
    views, labels = data
    path = save(tmp_path / "mine.mat", X=cell(views, (1, 3)), Y=labels)
    dataset = dataset_from_path(f"mat:{path}", {"preprocess": "minmax"})
    assert dataset.name == "mine.mat" and dataset.n_clusters == K and dataset.dims == list(DIMS)
    assert all(x.min() == 0 and x.max() == 1 for x in dataset.views)
    assert dataset.preprocessing and "minmax" in dataset.preprocessing[0]
    relative = dataset_from_path("mine.mat", {"views": "X{3}"}, data_dir=tmp_path)
    assert relative.dims == [DIMS[2]]
    with pytest.raises(MvbenchError, match="option of dataset file 'mine.mat'"):
        dataset_from_path(path, {"bogus": "1"})
    with pytest.raises(MvbenchError, match="not found"):
        dataset_from_path(tmp_path / "nope.mat", {})


def test_preprocessing_uses_observed_rows_only():
    x = np.array([[-2.0, 1.0], [0.0, 1.0], [2.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    observed = np.array([[True], [True], [True], [False]])
    (scaled,), steps = preprocess_views([x], "minmax", observed)
    np.testing.assert_allclose(scaled, [[0, 0], [0.5, 0], [1, 0], [0, 0]])
    assert "observed rows" in steps[0]
    (standard,), _ = preprocess_views([x[:3]], "standardize")
    np.testing.assert_allclose(standard.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(standard[:, 0].std(), 1, rtol=1e-5)
    assert preprocess_views([x], "none")[1] == []
    with pytest.raises(MvbenchError, match="choose one of none, minmax, standardize"):
        preprocess_views([x], "zscore")


def test_plain_hdf5_is_not_transposed(tmp_path, data):
    views, labels = data
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["X1"], f["X2"], f["Y"] = views[0], views[1], labels
    contents = load_mat(tmp_path / "plain.h5")
    check(contents, views[:2], labels)
    assert contents.orientation == "rows"
