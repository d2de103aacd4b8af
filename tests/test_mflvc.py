import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mvbench.errors import MvbenchError
from mvbench.options import resolve_options
from mvbench.specs import MethodInput
from mvbench_plugins.methods import mflvc

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: a second OpenMP thread only adds synchronisation (and stalls badly when
    other processes share the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = {"hidden": [16], "feature_dim": 8, "high_dim": 4, "batch_size": 32, "kmeans_n_init": 3}


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, int]] = []
        self.losses: list[float | None] = []

    def stage(self, name: str, total: int) -> None:
        self.stages.append((name, total))

    def epoch(self, loss: float | None = None) -> None:
        self.losses.append(loss)


def options(**given):
    return resolve_options(mflvc.SPEC.options, {**SMALL, **given}, owner="mflvc")


def blob_views(n_per: int = 30, seed: int = 0) -> tuple[list[torch.Tensor], np.ndarray]:
    """Three well-separated clusters seen through two views of different widths."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(n_per)
    views = []
    for dim in (5, 7):
        centers = 3.0 * torch.randn(3, dim, generator=g)
        views.append(centers[y] + 0.3 * torch.randn(len(y), dim, generator=g))
    return views, y.numpy()


def method_input(views, opts, seed=0, progress=None, precision="fp32") -> MethodInput:
    return MethodInput(
        views=views,
        mask=torch.ones(len(views[0]), len(views), dtype=torch.bool),
        n_clusters=3,
        options=opts,
        seed=seed,
        device=torch.device("cpu"),
        precision=precision,
        progress=progress or Recorder(),
    )


def small_model(n_views: int = 3) -> mflvc.MFLVCNet:
    torch.manual_seed(0)
    return mflvc.MFLVCNet([5] * n_views, 3, hidden=[6], feature_dim=4, high_dim=3)


def test_each_toggle_removes_its_part_and_skips_its_head():
    model = small_model()
    xs = [torch.randn(10, 5) for _ in range(3)]
    calls = {"feature": 0, "label": 0}
    model.feature_head.register_forward_hook(lambda *_: calls.__setitem__("feature", calls["feature"] + 1))
    model.label_head.register_forward_hook(lambda *_: calls.__setitem__("label", calls["label"] + 1))

    full = mflvc.contrastive_loss_parts(model, xs, options())
    assert set(full) == {"rec", "feature", "label", "balance"}
    assert calls == {"feature": 3, "label": 3}

    for toggle, part in [("feature_contrast", "feature"), ("label_contrast", "label"), ("balance", "balance")]:
        parts = mflvc.contrastive_loss_parts(model, xs, options(**{toggle: False}))
        assert set(parts) == set(full) - {part}
        for name in parts:  # the other parts are unchanged
            assert torch.allclose(parts[name], full[name])

    calls.update(feature=0, label=0)
    bare = mflvc.contrastive_loss_parts(model, xs, options(feature_contrast=False, label_contrast=False, balance=False))
    assert set(bare) == {"rec"} and calls == {"feature": 0, "label": 0}


def test_parts_follow_the_pair_sums():
    model = small_model()
    xs = [torch.randn(10, 5) for _ in range(3)]
    parts = mflvc.contrastive_loss_parts(model, xs, options())
    zs = model.autoencoders.encode(xs)
    qs = [model.assignments(z) for z in zs]
    hs = [model.high_level(z) for z in zs]
    pairs = [(0, 1), (0, 2), (1, 2)]
    balance = sum(mflvc.balance_term(qs[v]) + mflvc.balance_term(qs[w]) for v, w in pairs)
    assert parts["balance"].item() == pytest.approx(balance.item(), rel=1e-5)
    feature = sum(mflvc.instance_contrastive_loss(hs[v], hs[w], 0.5) for v, w in pairs)
    assert parts["feature"].item() == pytest.approx(feature.item(), rel=1e-5)
    label = sum(mflvc.cluster_contrastive_loss(qs[v], qs[w], 1.0) for v, w in pairs)
    assert parts["label"].item() == pytest.approx(label.item(), rel=1e-5)
    # single view: nothing to contrast
    assert set(mflvc.contrastive_loss_parts(small_model(1), xs[:1], options())) == {"rec"}


def test_fine_tune_loss_double_softmax_option():
    logits = [torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [0.5, 0.0, 1.5]])]
    # pseudo-labels use other names for the same partition: matching maps 2->0, 0->1, 1->2
    pseudo = [torch.tensor([2, 0, 1])]
    target = torch.tensor([0, 1, 2])
    double = mflvc.fine_tune_loss(logits, pseudo, 3, double_softmax=True)
    plain = mflvc.fine_tune_loss(logits, pseudo, 3, double_softmax=False)
    assert double.item() == pytest.approx(F.cross_entropy(logits[0].softmax(1), target).item())
    assert plain.item() == pytest.approx(F.cross_entropy(logits[0], target).item())
    assert double.item() > plain.item()  # softmax of probabilities is flat: a larger loss


def test_fit_predict_end_to_end_and_reports_progress():
    views, y = blob_views()
    progress = Recorder()
    opts = options(pre_epochs=3, con_epochs=3, tune_epochs=2)
    out = mflvc.fit_predict(method_input(views, opts, progress=progress))
    assert out.labels.dtype == np.int64 and out.labels.shape == (len(y),)
    assert progress.stages == [("pretrain", 3), ("contrastive", 3), ("pseudo_labels", 1), ("fine_tune", 2)]
    assert len(progress.losses) == 9 and all(np.isfinite(l) for l in progress.losses if l is not None)
    history, seconds = out.extras["loss_history"], out.extras["epoch_seconds"]
    assert {name: len(v) for name, v in history.items()} == {"pretrain": 3, "contrastive": 3, "fine_tune": 2}
    assert set(seconds) == {"pretrain", "contrastive", "pseudo_labels", "fine_tune"}
    assert history["pretrain"][-1] < history["pretrain"][0]


def test_recovers_separable_clusters():
    from sklearn.metrics import adjusted_rand_score

    views, y = blob_views(seed=1)
    opts = options(pre_epochs=20, con_epochs=20, tune_epochs=5, lr=3e-3)
    out = mflvc.fit_predict(method_input(views, opts))
    assert adjusted_rand_score(y, out.labels) > 0.9


def test_same_seed_same_labels_and_toggles_skip_stages():
    views, _ = blob_views(seed=2)
    opts = options(pre_epochs=2, con_epochs=2, tune_epochs=2)
    first = mflvc.fit_predict(method_input(views, opts, seed=5))
    second = mflvc.fit_predict(method_input(views, opts, seed=5))
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.extras["loss_history"] == second.extras["loss_history"]

    progress = Recorder()
    mflvc.fit_predict(method_input(views, options(pre_epochs=1, con_epochs=1, fine_tune=False), progress=progress))
    assert [name for name, _ in progress.stages] == ["pretrain", "contrastive"]


def test_bf16_runs_and_bad_precision_is_a_user_error():
    views, y = blob_views(n_per=10)
    out = mflvc.fit_predict(method_input(views, options(pre_epochs=1, con_epochs=1, tune_epochs=1), precision="bf16"))
    assert out.labels.shape == y.shape
    with pytest.raises(MvbenchError):
        mflvc.fit_predict(method_input(views, options(), precision="fp8"))


def test_spec_and_presets():
    assert mflvc.mvbench_methods() == [mflvc.SPEC]
    defaults = resolve_options(mflvc.SPEC.options, {})
    assert (defaults["pre_epochs"], defaults["con_epochs"], defaults["tune_epochs"]) == (200, 50, 50)
    assert defaults["hidden"] == (500, 500, 2000) and defaults["double_softmax"] is True
    assert mflvc.SPEC.presets["bdgp"] == {"con_epochs": 10}
    assert mflvc.SPEC.presets["fashion"] == {"con_epochs": 100}
    assert not mflvc.SPEC.handles_missing
