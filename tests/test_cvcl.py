"""CVCL: the sharpened column contrast and the balance term against hand-computed numbers and an
independent numpy formula, the ablations, determinism, finite outputs and a tiny CLI run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from mvbench.options import ablated, resolve_options
from mvbench.progress import QuietProgress
from mvbench.registry import build_registry
from mvbench.results import read_records
from mvbench.runner import Trial, resolve
from mvbench.specs import MethodInput
from mvbench_plugins.methods import cvcl, cvcl_parts
from mvbench_plugins.methods.cvcl import SPEC, Config, finetune_parts, predict
from mvbench_plugins.methods.cvcl_parts import CVCLNet, assignment_loss_parts, negative_entropy_of_mean

PLUGIN = "mvbench_plugins.methods.cvcl"
DIMS = (7, 5, 4)
K = 3
TINY = {"hidden": [12], "feature_dim": 8, "head_dim": 6, "batch_size": 16, "pretrain_epochs": 2,
        "finetune_epochs": 3, "lr": 1e-3}


# --- independent numpy formulas --------------------------------------------------------------

def _np_sharpen(q: np.ndarray) -> np.ndarray:
    weight = q**2 / q.sum(axis=0)
    return weight / weight.sum(axis=1, keepdims=True)


def _np_column_contrast(p_a: np.ndarray, p_b: np.ndarray, tau: float, similarity: str) -> float:
    cols = np.concatenate([p_a.T, p_b.T])
    if similarity == "cosine":
        cols = cols / np.linalg.norm(cols, axis=1, keepdims=True)
    k = p_a.shape[1]
    losses = []
    for r in range(2 * k):
        others = [float(cols[r] @ cols[s]) / tau for s in range(2 * k) if s != r]
        positive = float(cols[r] @ cols[(r + k) % (2 * k)]) / tau
        losses.append(-positive + math.log(sum(math.exp(x) for x in others)))
    return sum(losses) / len(losses)


def _np_balance(p: np.ndarray) -> float:
    mean = p.mean(axis=0)
    return float((mean * np.log(mean)).sum())


def _loss_parts(q: torch.Tensor, **kw) -> dict[str, torch.Tensor]:
    args = {"lambda_contrast": 1.0, "beta_balance": 1.0, "temperature": 1.0, "similarity": "dot",
            "sharpened": True, "detach_frequency": False, **kw}
    return assignment_loss_parts(q, **args)


def _random_q(v: int, b: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(v, b, k, generator=g, dtype=torch.float64), dim=-1).float()


# --- losses ----------------------------------------------------------------------------------

def test_sharpened_column_contrast_hand_case_dot_and_cosine():
    # One-hot rows stay one-hot under sharpening. Columns of both views: c1 = (1,1,1,0),
    # c2 = (0,0,0,1). Dot: anchor c1 has positive 3 and negatives 0, 0; anchor c2 positive 1.
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    both = torch.stack([q, q])
    dot = _loss_parts(both, beta_balance=0.0)["contrast"]
    expected_dot = (2 * math.log(1 + 2 * math.exp(-3)) + 2 * math.log(1 + 2 * math.exp(-1))) / 4
    assert float(dot) == pytest.approx(expected_dot, rel=1e-6)
    # Cosine: every positive is 1, every negative 0; temperature 0.5 doubles the logits.
    cosine = _loss_parts(both, beta_balance=0.0, similarity="cosine", temperature=0.5)["contrast"]
    assert float(cosine) == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_pair_sums_match_numpy(similarity):
    q = _random_q(3, 10, 4, seed=1)
    parts = _loss_parts(q, lambda_contrast=0.3, beta_balance=0.2, temperature=0.7, similarity=similarity)
    p = [_np_sharpen(x) for x in q.double().numpy()]
    pairs = [(0, 1), (0, 2), (1, 2)]
    contrast = 0.3 * sum(_np_column_contrast(p[a], p[b], 0.7, similarity) for a, b in pairs)
    balance = 0.2 * sum(_np_balance(p[a]) + _np_balance(p[b]) for a, b in pairs)
    assert float(parts["contrast"]) == pytest.approx(contrast, rel=1e-5)
    assert float(parts["balance"]) == pytest.approx(balance, rel=1e-5)


def test_balance_is_on_the_sharpened_p_hand_case():
    # f = (1.4, 0.6): row (0.5, 0.5) -> (0.3, 0.7), row (0.9, 0.1) -> (0.972, 0.028).
    q = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    both = torch.stack([q, q])
    balance = _loss_parts(both, lambda_contrast=0.0, beta_balance=0.5)["balance"]
    b = 0.636 * math.log(0.636) + 0.364 * math.log(0.364)
    assert float(balance) == pytest.approx(0.5 * 2 * b, rel=1e-5)  # one pair, both views' terms
    unsharpened = _loss_parts(both, lambda_contrast=0.0, beta_balance=0.5, sharpened=False)["balance"]
    assert float(unsharpened) == pytest.approx(0.5 * 2 * (0.7 * math.log(0.7) + 0.3 * math.log(0.3)), rel=1e-5)


def test_balance_floors_an_unused_cluster():
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    value = negative_entropy_of_mean(p)
    value.backward()
    assert math.isfinite(float(value.detach())) and abs(float(value.detach())) < 1e-9
    assert torch.isfinite(p.grad).all()


def test_detach_target_keeps_the_value_and_changes_the_gradient():
    logits = torch.randn(2, 12, K, generator=torch.Generator().manual_seed(3), requires_grad=True)
    grads, values = [], []
    for detach in (False, True):
        loss = _loss_parts(torch.softmax(logits, -1), detach_frequency=detach)
        total = loss["contrast"] + loss["balance"]
        values.append(float(total.detach()))
        grads.append(torch.autograd.grad(total, logits)[0])
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert not torch.allclose(grads[0], grads[1])


# --- ablations -------------------------------------------------------------------------------

def _model(seed: int = 0, n_views: int = 3) -> CVCLNet:
    torch.manual_seed(seed)
    return CVCLNet(DIMS[:n_views], [12], 8, 6, K)


def _batch(b: int = 20, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, d, generator=g) for d in DIMS]


def _cfg(**options) -> Config:
    return Config.from_options({**TINY, **options})


def _forbid(monkeypatch, obj, name):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} must not run")
    monkeypatch.setattr(obj, name, fail)


def test_full_loss_has_every_part_and_their_sum():
    parts = {key: value.detach() for key, value in finetune_parts(_model(), _batch(), _cfg()).items()}
    assert set(parts) == {"contrast", "balance", "rec", "total"}
    assert float(parts["total"]) == pytest.approx(float(parts["contrast"] + parts["balance"] + parts["rec"]))


def test_lambda_zero_removes_the_contrast(monkeypatch):
    _forbid(monkeypatch, cvcl_parts, "column_contrast")
    assert set(finetune_parts(_model(), _batch(), _cfg(lambda_contrast=0.0))) == {"balance", "rec", "total"}


def test_beta_zero_removes_the_balance(monkeypatch):
    _forbid(monkeypatch, cvcl_parts, "negative_entropy_of_mean")
    assert set(finetune_parts(_model(), _batch(), _cfg(beta_balance=0.0))) == {"contrast", "rec", "total"}


def test_no_sharpening_contrasts_q_itself(monkeypatch):
    model, xs = _model(), _batch()
    with torch.no_grad():
        q = model.assignments(model.autoencoders.encode(xs))
    _forbid(monkeypatch, cvcl_parts, "sharpen")
    with torch.no_grad():
        parts = finetune_parts(model, xs, _cfg(sharpen=False, lambda_contrast=1.0))
    expected = sum(cvcl_parts.column_contrast(q[a], q[b], 1.0) for a, b in [(0, 1), (0, 2), (1, 2)])
    assert float(parts["contrast"]) == pytest.approx(float(expected), rel=1e-5)


def test_no_reconstruction_in_finetune_never_decodes(monkeypatch):
    model = _model()
    _forbid(monkeypatch, model.autoencoders, "decode")
    assert set(finetune_parts(model, _batch(), _cfg(rec_in_finetune=False))) == {"contrast", "balance", "total"}


def test_no_pretraining_runs_no_pretrain_epoch():
    out = _fit(_views(40, 1)[0], pretrain_epochs=0)
    assert out.extras["loss_history"]["pretrain"] == []
    assert len(out.extras["loss_history"]["finetune"]) == TINY["finetune_epochs"]


def test_variants_move_exactly_their_ablation_toggle():
    assert set(SPEC.variants) == {"cvcl-nocontrast", "cvcl-nobalance", "cvcl-nopretrain", "cvcl-nosharpen"}
    expected = {"cvcl-nocontrast": ("lambda_contrast",), "cvcl-nobalance": ("beta_balance",),
                "cvcl-nopretrain": ("pretrain_epochs",), "cvcl-nosharpen": ("sharpen",)}
    toggles = {o.name for o in SPEC.options if o.ablation}
    assert toggles == {"lambda_contrast", "beta_balance", "pretrain_epochs", "sharpen"}
    registry = build_registry(objects=[("cvcl", cvcl)])
    for name, toggle in expected.items():
        values = resolve_options(SPEC.options, SPEC.variants[name].options)
        assert ablated(SPEC.options, values) == toggle
        resolved = resolve(Trial(method=name, dataset="msrcv1", seed=0), registry)
        # the variant overrides the preset; everything else keeps the dataset's preset
        assert ablated(SPEC.options, resolved.method_options, resolved.preset) == toggle
        assert resolved.method_options["batch_size"] == 35


# --- end to end ------------------------------------------------------------------------------

def _views(n: int, seed: int) -> tuple[list[torch.Tensor], np.ndarray]:
    """Clustered, non-negative views (sigmoid of Gaussian clusters) and their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    views = []
    for d in DIMS:
        centers = 3 * torch.randn(K, d, generator=g)
        views.append(torch.sigmoid(centers[y] + 0.5 * torch.randn(n, d, generator=g)))
    return views, y.numpy()


def _fit(views, seed: int = 0, precision: str = "fp32", **options):
    n = views[0].shape[0]
    inp = MethodInput(views=views, mask=torch.ones(n, len(views), dtype=torch.bool), n_clusters=K,
                      options={**TINY, **options}, seed=seed, device=torch.device("cpu"),
                      precision=precision, progress=QuietProgress())
    return SPEC.fit_predict(inp)


def test_labels_every_sample_in_order_with_finite_extras():
    views, _ = _views(50, 2)  # 50 = 3 batches of 16 + 2 dropped in training, none in evaluation
    out = _fit(views)
    assert out.labels.shape == (50,) and out.labels.dtype == np.int64
    assert out.labels.min() >= 0 and out.labels.max() < K
    history = out.extras["loss_history"]
    assert len(history["pretrain"]) == 2 and len(history["finetune"]) == 3
    assert all(math.isfinite(x) for losses in history.values() for x in losses)
    assert set(out.extras["loss_parts"]["finetune"]) == {"contrast", "balance", "rec"}
    assert np.array(out.extras["view_agreement"]).shape == (3, 3)
    assert sum(out.extras["cluster_sizes"]) == 50
    assert 0.0 <= out.extras["mean_view_agreement"] <= 1.0


def test_prediction_is_the_argmax_of_the_mean_unsharpened_q_in_order():
    model, views = _model(), _views(50, 2)[0]
    with torch.no_grad():
        q = model.assignments(model.autoencoders.encode(views))
    found = predict(model, views, 16, "fp32")  # chunks of 16: the order must hold
    assert torch.equal(found.labels, q.mean(dim=0).argmax(dim=1))
    assert torch.equal(found.view_labels, q.argmax(dim=2))
    torch.testing.assert_close(found.mean_q, q.mean(dim=0))
    with torch.no_grad():
        torch.testing.assert_close(found.embedding, torch.cat(model.autoencoders.encode(views), dim=1))


def test_fewer_samples_than_a_batch_still_train():
    out = _fit(_views(10, 3)[0])
    assert out.labels.shape == (10,)
    assert len(out.extras["loss_history"]["finetune"]) == 3


def test_learns_clear_clusters():
    views, y = _views(90, 4)
    out = _fit(views, pretrain_epochs=5, finetune_epochs=40, batch_size=30, lr=1e-2,
               lambda_contrast=1.0, beta_balance=1.0)
    assert adjusted_rand_score(y, out.labels) > 0.6


def test_same_seed_same_labels_and_callers_rng_untouched():
    views, _ = _views(40, 5)
    before = torch.get_rng_state()
    a, b = _fit(views, seed=7), _fit(views, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(a.labels, b.labels)
    assert a.extras["loss_history"] == b.extras["loss_history"]
    assert _fit(views, seed=8).extras["loss_history"] != a.extras["loss_history"]


def test_bf16_run_is_finite():
    out = _fit(_views(32, 6)[0], precision="bf16", pretrain_epochs=1, finetune_epochs=1)
    assert all(math.isfinite(x) for losses in out.extras["loss_history"].values() for x in losses)


def test_tiny_cli_run_and_a_variant_with_the_runners_fill(cli, tmp_path):
    tiny = [f"--set={name}={value}" for name, value in
            {"dataset.samples": 40, "dataset.dims": 5, "dataset.preprocess": "minmax", "hidden": 12,
             "feature_dim": 8, "head_dim": 6, "batch_size": 16, "pretrain_epochs": 1,
             "finetune_epochs": 2}.items()]
    code, _, err = cli("-p", PLUGIN, "run", "--method", "cvcl", "--dataset", "synthetic", "--seeds", "2",
                       *tiny, "--out", str(tmp_path / "full"), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "full" / "trials.jsonl")
    assert [r["seed"] for r in records] == [0, 1] and all(r["status"] == "ok" for r in records)
    assert records[0]["method_options"]["hidden"] == [12]
    code, _, err = cli("-p", PLUGIN, "run", "--method", "cvcl-nobalance", "--dataset", "synthetic",
                       "--missing", "mcar", "--rate", "0.3", "--seeds", "1,", *tiny,
                       "--out", str(tmp_path / "ablation"), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / "ablation" / "trials.jsonl")
    assert record["status"] == "ok" and record["method_options"]["beta_balance"] == 0.0
    assert record["fill"] == "mean"  # complete views only: the runner filled the missing ones


# --- spec ------------------------------------------------------------------------------------

def test_spec_defaults_and_presets():
    assert SPEC.name == "cvcl" and not SPEC.handles_missing and SPEC.version == 1
    assert cvcl.mvbench_methods() == [SPEC]
    defaults = Config.from_options({})
    assert (defaults.hidden, defaults.feature_dim, defaults.head_dim, defaults.lr, defaults.batch_size,
            defaults.finetune_epochs, defaults.pretrain_epochs, defaults.similarity, defaults.lambda_contrast,
            defaults.beta_balance, defaults.temperature) == ((256, 512, 1024), 1024, 1024, 5e-4, 100, 100, 200,
                                                             "dot", 0.01, 0.01, 1.0)
    assert defaults.sharpen and not defaults.detach_target and defaults.drop_last and defaults.rec_in_finetune
    assert SPEC.presets["msrcv1"]["beta_balance"] == 0.005 and SPEC.presets["fashion"]["temperature"] == 0.5
    datasets = build_registry().datasets
    for name, preset in SPEC.presets.items():
        resolve_options(SPEC.options, preset)
        n = datasets[name].summary["n"]
        assert n % preset["batch_size"] == 0, name  # no sample is dropped by the preset's batches
