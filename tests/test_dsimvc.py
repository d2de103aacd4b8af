"""DSIMVC: losses against plain-numpy formulas and hand-computed cases, the neighbour walk, the
bi-level step, ablations, NaN safety, determinism, the CLI, and the dsimvc-mask mechanism."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mvbench.errors import MvbenchError
from mvbench.missing import make_mask
from mvbench.options import resolve_options
from mvbench.progress import QuietProgress
from mvbench.registry import build_registry
from mvbench.results import read_records
from mvbench.specs import Dataset, MethodInput
from mvbench_plugins.methods import dsimvc
from mvbench_plugins.methods.dsimvc import SPEC, Config, scaled_views
from mvbench_plugins.methods.dsimvc_parts import (
    DsimvcLosses,
    DsimvcNet,
    PairTerms,
    StepContext,
    WeightNet,
    bilevel_step,
    mean_over_views,
    neighbour_imputation,
    plain_step,
    pooled_batches,
    same_view_cluster_contrast,
    spectral_contrastive_terms,
)
from mvbench_plugins.missingness import dsimvc_mask

from run_helpers import assert_seeded

NAN = float("nan")
DIMS = (7, 5, 4)
K = 3
TINY = {"hidden": [12], "feature_dim": 8, "high_dim": 4, "batch_size": 16, "pretrain_epochs": 2,
        "neighbour_mse_epochs": 2, "initial_epochs": 2, "iterations": 4, "topk": 40}


class Recorder(QuietProgress):
    def __init__(self) -> None:
        super().__init__()
        self.stages: list[tuple[str, int]] = []

    def stage(self, name: str, total: int) -> None:
        super().stage(name, total)
        self.stages.append((name, total))


def _mask(n: int, seed: int, n_complete: int) -> torch.Tensor:
    """The first ``n_complete`` rows complete, the others missing at least one view."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, len(DIMS), generator=g) > 0.5
    mask[n_complete:][mask[n_complete:].all(dim=1), 0] = False
    mask[~mask.any(dim=1), 1] = True
    mask[:n_complete] = True
    return mask


def _views(n: int, seed: int, mask: torch.Tensor, fill: float = NAN) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clustered views with ``fill`` in every missing row, and the labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    views = []
    for v, d in enumerate(DIMS):
        centers = 3 * torch.randn(K, d, generator=g)
        x = centers[y] + 0.5 * torch.randn(n, d, generator=g)
        views.append(torch.where(mask[:, v, None], x, torch.tensor(fill)))
    return views, y


def _fit(views, mask, seed=0, progress=None, **options):
    inp = MethodInput(views=views, mask=mask, n_clusters=K, options={**TINY, **options}, seed=seed,
                      device=torch.device("cpu"), precision="fp32", progress=progress or QuietProgress())
    return SPEC.fit_predict(inp)


def _model(seed: int = 0, n_views: int = 3) -> DsimvcNet:
    torch.manual_seed(seed)
    return DsimvcNet(DIMS[:n_views], K, hidden=[12], feature_dim=8, high_dim=4,
                     normalize_features=False, with_decoders=False)


# --- losses ---------------------------------------------------------------------------------

def test_spectral_term_hand_case_caps_rows_at_sqrt3():
    # rows of norm 2 and 3 are capped to sqrt(3): a = [1, sqrt3], b = [1, sqrt3]
    # l_1 = -(2/2)(1*1) + (sqrt3)^2 / (2*1) = 0.5 ; l_2 = -(2/2)*3 + 1^2*3 / 2 = -1.5
    a, b = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [3.0]])
    terms = spectral_contrastive_terms(a, b)
    torch.testing.assert_close(terms, torch.tensor([0.5, -1.5]))


def _numpy_spectral(a, b, r=3.0):
    def cap(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.where(norm < np.sqrt(r), x, x / norm * np.sqrt(r))

    a, b = cap(a), cap(b)
    n = len(a)
    out = []
    for i in range(n):
        negatives = sum(float(a[i] @ b[j]) ** 2 for j in range(n) if j != i)
        out.append(-2.0 / n * float(a[i] @ b[i]) + negatives / (n * (n - 1)))
    return np.array(out)


def test_spectral_terms_match_plain_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(scale=1.2, size=(9, 5)), rng.normal(scale=1.2, size=(9, 5))
    assert (np.linalg.norm(a, axis=1) > np.sqrt(3)).any() and (np.linalg.norm(a, axis=1) < np.sqrt(3)).any()
    got = spectral_contrastive_terms(torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
    np.testing.assert_allclose(got.numpy(), _numpy_spectral(a, b), rtol=1e-5, atol=1e-6)


def test_label_contrast_hand_case_same_view_and_all_negatives():
    q = torch.eye(2)  # two orthogonal cluster columns, identical in both views
    # anchor: positive cosine 1; same-view negative cosine 0 -> -log(e / (e + 1))
    expected_same = math.log(1 + math.exp(-1))
    assert same_view_cluster_contrast(q, q).item() == pytest.approx(expected_same, rel=1e-6)
    # negatives from both views (MFLVC): the other column of each view -> -log(e / (e + 2))
    losses = DsimvcLosses(feature_term=False, balance=False, same_view_negatives=False)
    assert losses.terms(None, [q, q]).label.item() == pytest.approx(math.log(1 + 2 * math.exp(-1)), rel=1e-6)
    # balanced columns: the balance term is 0, so L_L = the contrast alone
    full = DsimvcLosses(feature_term=False).terms(None, [q, q])
    assert full.balance.item() == pytest.approx(0.0, abs=1e-6)


def _numpy_label_term(qa, qb, temperature=1.0):
    k = qa.shape[1]
    cols = np.concatenate([qa.T, qb.T])
    cols = cols / np.linalg.norm(cols, axis=1, keepdims=True)
    sim = cols @ cols.T / temperature
    total = 0.0
    for r in range(2 * k):
        positive = (r + k) % (2 * k)
        same_view = range(0, k) if r < k else range(k, 2 * k)
        logits = [sim[r, positive]] + [sim[r, s] for s in same_view if s != r]
        total += -logits[0] + np.log(np.sum(np.exp(logits)))
    contrast = total / (2 * k)

    def balance(q):
        p = q.sum(0) / q.sum()
        return np.log(k) + np.sum(p * np.log(p))

    return contrast, balance(qa) + balance(qb)


def test_label_term_with_same_view_negatives_matches_numpy_for_three_views():
    rng = np.random.default_rng(1)
    qs = [rng.dirichlet(np.ones(4), size=6) for _ in range(3)]
    terms = DsimvcLosses(feature_term=False).terms(None, [torch.tensor(q, dtype=torch.float32) for q in qs])
    contrast = balance = 0.0
    for v, w in [(0, 1), (0, 2), (1, 2)]:
        c, b = _numpy_label_term(qs[v], qs[w])
        contrast, balance = contrast + c, balance + b
    assert terms.label.item() == pytest.approx(contrast, rel=1e-5)
    assert terms.balance.item() == pytest.approx(balance, rel=1e-5)
    assert terms.feature is None


def test_weighted_feature_term_and_its_scale():
    terms = PairTerms(feature=torch.tensor([1.0, 2.0, 3.0]), label=torch.tensor(0.5), balance=torch.tensor(0.25))
    w = torch.tensor([1.0, 0.0, 1.0])
    assert terms.weighted(w, 1.0).item() == pytest.approx((1 + 3) / 2 + 0.75)
    assert terms.weighted(w, 3.0).item() == pytest.approx(3 * 2 + 0.75)  # inc_feature_scale=xB
    assert terms.unweighted().item() == pytest.approx(6 + 0.75)
    scaled = DsimvcLosses(feature_scale_by_batch=True)
    assert scaled.feature_scale(256) == 256 and DsimvcLosses().feature_scale(256) == 1


@pytest.mark.parametrize("toggle, part", [("feature_term", "feature"), ("label_term", "label"), ("balance", "balance")])
def test_each_term_toggle_removes_its_term_only(toggle, part):
    model = _model()
    xs = [torch.rand(10, d) for d in DIMS]
    hs, qs = model(xs)
    full = DsimvcLosses().terms(hs, qs)
    ablated = DsimvcLosses(**{toggle: False}).terms(hs, qs)
    assert getattr(ablated, part) is None
    for other in {"feature", "label", "balance"} - {part}:
        torch.testing.assert_close(getattr(ablated, other), getattr(full, other))


def test_feature_head_not_evaluated_without_the_feature_term():
    model = _model()
    calls = []
    model.feature_head.register_forward_hook(lambda *_: calls.append(1))
    hs, _ = model([torch.rand(4, d) for d in DIMS], need_features=False)
    assert hs is None and calls == []


# --- neighbour imputation -------------------------------------------------------------------

def _walk_case():
    """Ten samples, three views, 1-d features whose order is the ranking.

    s0, s1 miss view 2; s4 misses view 0; the others observe everything. Missing rows hold NaN
    in the features and in the data.
    """
    n = 10
    mask = torch.ones(n, 3, dtype=torch.bool)
    mask[[0, 1], 2] = False
    mask[4, 0] = False
    f0 = torch.tensor([1.0, 0.95, 0.9, 0.8, NAN, 0.7, 0.6, 0.5, 0.4, 0.3])
    f1 = torch.tensor([0.8, 1.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.9])
    f2 = torch.tensor([NAN, NAN, 0.1, 0.2, 0.3, 0.4, 0.5, 0.95, 0.6, 0.7])
    features = [f[:, None] for f in (f0, f1, f2)]
    views = [torch.arange(n, dtype=torch.float32)[:, None] * 10 + v for v in range(3)]
    views = [torch.where(mask[:, v, None], x, torch.tensor(NAN)) for v, x in enumerate(views)]
    return features, views, mask


def test_neighbour_walk_accepts_the_documented_neighbours():
    features, views, mask = _walk_case()
    safe = [torch.nan_to_num(x) for x in views]  # the method zero-fills before imputing
    filled, counts = neighbour_imputation(features, safe, mask, k=3, topk=600)
    x0, x2 = safe[0][:, 0], safe[2][:, 0]
    # s0 (missing view 2): view 0 ranks s1 (misses view 2: rejected), s2, s3, s5 -> 3 accepted;
    # view 1's nearest is s1 (rejected): a later view never looks past its nearest candidate.
    assert filled[2][0, 0].item() == pytest.approx(x2[[2, 3, 5]].mean().item())
    # s1: view 0 ranks s0 (self excluded; s0 misses view 2), s2, s3, s5; view 1's nearest
    # other sample is s9 (valid): a fourth neighbour.
    assert filled[2][1, 0].item() == pytest.approx(x2[[2, 3, 5, 9]].mean().item())
    # s4 (missing view 0): view 1 ranks s1, s9, s0 (all observe view 0); view 2's nearest is s7.
    assert filled[0][4, 0].item() == pytest.approx(x0[[1, 9, 0, 7]].mean().item())
    assert counts[0, 2] == 3 and counts[1, 2] == 4 and counts[4, 0] == 4
    assert counts[mask].eq(0).all()
    for v in range(3):  # observed rows untouched, inputs not modified
        torch.testing.assert_close(filled[v][mask[:, v]], safe[v][mask[:, v]])
    assert all(torch.isfinite(x).all() for x in filled)


def test_neighbour_walk_fills_up_from_later_views_when_the_window_is_short():
    features, views, mask = _walk_case()
    safe = [torch.nan_to_num(x) for x in views]
    filled, counts = neighbour_imputation(features, safe, mask, k=3, topk=2)
    # s0: view 0's two nearest are s1 (rejected) and s2 -> 1; view 1's two nearest are s1
    # (rejected) and s9 -> taken while fewer than k are held: 2 in all.
    assert counts[0, 2] == 2
    assert filled[2][0, 0].item() == pytest.approx(safe[2][[2, 9], 0].mean().item())


def test_entry_without_any_valid_neighbour_takes_the_observed_mean():
    mask = torch.tensor([[True, False], [True, False], [False, True], [False, True]])
    views = [torch.tensor([[1.0], [2.0], [0.0], [0.0]]), torch.tensor([[0.0], [0.0], [5.0], [7.0]])]
    features = [torch.ones(4, 2), torch.ones(4, 2)]
    filled, counts = neighbour_imputation(features, views, mask, k=3, topk=600)
    assert counts.sum() == 0  # nobody observes both views
    torch.testing.assert_close(filled[1][:2], torch.full((2, 1), 6.0))
    torch.testing.assert_close(filled[0][2:], torch.full((2, 1), 1.5))


def test_pooled_batches_are_concatenated_permutations():
    g = torch.Generator().manual_seed(0)
    pool = torch.tensor([3, 5, 8, 13, 21])
    batches = pooled_batches(pool, n_batches=4, batch_size=3, generator=g)
    assert batches.shape == (4, 3)
    flat = batches.reshape(-1)
    for start in range(0, 10, 5):  # every block of |pool| draws is a permutation of the pool
        assert sorted(flat[start:start + 5].tolist()) == pool.tolist()
    small = pooled_batches(torch.tensor([1, 2]), n_batches=2, batch_size=5, generator=g)
    assert set(small.reshape(-1).tolist()) == {1, 2}  # a pool smaller than a batch repeats


def test_mean_over_views_reads_the_observed_views_only():
    qs = [torch.tensor([[1.0, 0.0], [0.2, 0.8]]), torch.tensor([[0.0, 1.0], [0.6, 0.4]])]
    rows = torch.tensor([[True, False], [True, True]])
    torch.testing.assert_close(mean_over_views(qs, rows), torch.tensor([[1.0, 0.0], [0.4, 0.6]]))


# --- training steps -------------------------------------------------------------------------

def _context(model: DsimvcNet, losses: DsimvcLosses | None = None, meta_lr: float = 1e-3) -> StepContext:
    torch.manual_seed(1)
    weight_net = WeightNet(K, 6)
    return StepContext(model=model, model_optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                       losses=losses or DsimvcLosses(), precision="fp32", weight_net=weight_net,
                       weight_optimizer=torch.optim.Adam(weight_net.parameters(), lr=1e-3), meta_lr=meta_lr)


def _batches(b: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, d, generator=g) for d in DIMS], [torch.rand(b, d, generator=g) for d in DIMS]


def test_second_order_step_trains_the_weight_net_and_model_step_uses_new_weights():
    complete, imputed = _batches()
    ctx = _context(_model())
    model_before = copy.deepcopy(ctx.model)
    weights_before = copy.deepcopy(ctx.weight_net)
    names_before = [id(p) for p in ctx.model.parameters()]
    stats = bilevel_step(ctx, complete, imputed)
    # the weight net received a gradient (only through theta' = theta - lr * grad) and moved
    assert any(p.grad.abs().sum() > 0 for p in ctx.weight_net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(ctx.weight_net.parameters(), weights_before.parameters()))
    assert [id(p) for p in ctx.model.parameters()] == names_before  # no new network per step
    # the model moved by one Adam step on L_C + L_I(w) with w from the UPDATED weight net
    hs, qs = model_before([torch.cat([c, i]) for c, i in zip(complete, imputed)])
    b = complete[0].shape[0]
    with torch.no_grad():
        w = ctx.weight_net(torch.stack([q[b:] for q in qs]).mean(0))
    losses = DsimvcLosses()
    expected = (losses.terms([h[:b] for h in hs], [q[:b] for q in qs]).unweighted()
                + losses.terms([h[b:] for h in hs], [q[b:] for q in qs]).weighted(w, 1.0))
    assert stats[0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats[2].item() == pytest.approx(w.mean().item(), rel=1e-5)
    optimizer = torch.optim.Adam(model_before.parameters(), lr=1e-3)
    optimizer.zero_grad()
    expected.backward()
    optimizer.step()
    for a, b_ in zip(ctx.model.parameters(), model_before.parameters()):
        torch.testing.assert_close(a, b_, rtol=1e-5, atol=1e-6)


def test_meta_gradient_matches_finite_differences():
    # Weights only matter relative to each other, and an untrained model's assignments barely
    # differ between samples: spread inputs and weight-net gains, and take a large virtual step,
    # so that the effect stands well above float32 rounding.
    complete, imputed = ([5 * x for x in part] for part in _batches(seed=3))
    model, losses, meta_lr = _model(2), DsimvcLosses(), 5.0

    def meta_loss(weight_net: WeightNet) -> torch.Tensor:
        b = complete[0].shape[0]
        params = dict(model.named_parameters())
        hs, qs = model([torch.cat([c, i]) for c, i in zip(complete, imputed)])
        w = weight_net(torch.stack([q[b:] for q in qs]).mean(0))
        inner = (losses.terms([h[:b] for h in hs], [q[:b] for q in qs]).unweighted()
                 + losses.terms([h[b:] for h in hs], [q[b:] for q in qs]).weighted(w, 1.0))
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        virtual = {n: p - meta_lr * g for (n, p), g in zip(params.items(), grads)}
        hs2, qs2 = torch.func.functional_call(model, virtual, (complete,))
        return losses.terms(hs2, qs2).unweighted()

    torch.manual_seed(4)
    weight_net = WeightNet(K, 6)
    with torch.no_grad():
        weight_net.net[0].weight.mul_(30)
    params = list(weight_net.parameters())
    grads = torch.autograd.grad(meta_loss(weight_net), params)
    # the entry with the largest gradient, perturbed both ways
    which = max(range(len(params)), key=lambda i: grads[i].abs().max().item())
    param, grad = params[which].view(-1), grads[which].reshape(-1)
    j = int(grad.abs().argmax())
    eps = 3e-2
    with torch.no_grad():
        param[j] += eps
    up = meta_loss(weight_net).item()
    with torch.no_grad():
        param[j] -= 2 * eps
    down = meta_loss(weight_net).item()
    assert grad[j].abs().item() > 1e-4  # a gradient reaches the weight net only through theta'
    assert grad[j].item() == pytest.approx((up - down) / (2 * eps), rel=0.05)


def test_uniform_and_complete_only_steps_drop_the_weighting_and_the_imputed_term():
    complete, imputed = _batches()
    model = _model()
    hs, qs = model([torch.cat([c, i]) for c, i in zip(complete, imputed)])
    b, losses = complete[0].shape[0], DsimvcLosses()
    l_c = losses.terms([h[:b] for h in hs], [q[:b] for q in qs]).unweighted()
    imputed_terms = losses.terms([h[b:] for h in hs], [q[b:] for q in qs])
    uniform = l_c + imputed_terms.feature.mean() + imputed_terms.label + imputed_terms.balance
    uniform_step = plain_step(_context(copy.deepcopy(model)), complete, imputed)
    assert uniform_step.item() == pytest.approx(uniform.item(), rel=1e-5)  # every weight 1: the plain mean
    complete_only_step = plain_step(_context(copy.deepcopy(model)), complete, None)
    assert complete_only_step.item() == pytest.approx(l_c.item(), rel=1e-5)  # no imputed term at all


# --- end to end -----------------------------------------------------------------------------

def test_missing_rows_are_never_read():
    mask = _mask(48, 0, n_complete=20)
    with_nan, _ = _views(48, 1, mask, fill=NAN)
    with_garbage, _ = _views(48, 1, mask, fill=1e6)
    for options in ({}, {"reimpute": "every_iter", "infer_views": "with_imputed"}):
        a = _fit(with_nan, mask, **options)
        b = _fit(with_garbage, mask, **options)
        assert np.array_equal(a.labels, b.labels)
        assert a.extras["loss_history"] == b.extras["loss_history"]
        losses = [x for stage in a.extras["loss_history"].values() for x in stage]
        assert losses and all(math.isfinite(x) for x in losses)
    assert all(torch.isnan(x[~mask[:, v]]).all() for v, x in enumerate(with_nan))  # inputs untouched


def test_stages_extras_and_labels():
    mask = _mask(40, 2, n_complete=20)
    views, _ = _views(40, 2, mask)
    progress = Recorder()
    out = _fit(views, mask, progress=progress)
    assert progress.stages == [("pretrain", 2), ("neighbour_mse", 2), ("neighbour_contrastive", 2), ("bilevel", 4)]
    assert out.labels.shape == (40,) and out.labels.dtype == np.int64 and out.labels.max() < K
    extras = out.extras
    assert extras["n_complete"] == 20 and extras["n_incomplete"] == 20
    assert extras["imputation"]["imputed_entries"] == int((~mask).sum())
    assert len(extras["meta_history"]["w_mean"]) == 4 and 0 < extras["final_weights"]["mean"] < 1
    assert {"pretrain", "neighbour_mse", "neighbour_contrastive", "imputation", "bilevel", "inference"} \
        <= set(extras["epoch_seconds"])


@pytest.mark.parametrize("weighting", ["uniform", "complete_only"])
def test_weighting_variants_skip_the_weight_net(weighting):
    mask = _mask(40, 3, n_complete=20)
    views, _ = _views(40, 3, mask)
    progress = Recorder()
    out = _fit(views, mask, progress=progress, weighting=weighting)
    assert "meta_history" not in out.extras and "final_weights" not in out.extras
    stages = [name for name, _ in progress.stages]
    if weighting == "complete_only":  # nothing imputed is used: no neighbour net, no imputation
        assert stages == ["pretrain", "bilevel"] and "imputation" not in out.extras
    else:
        assert "neighbour_contrastive" in stages and "imputation" in out.extras


def test_small_complete_pool_still_trains_the_neighbour_net():
    mask = _mask(40, 4, n_complete=10)  # 10 complete samples < batch 16
    views, _ = _views(40, 4, mask)
    out = _fit(views, mask)
    assert all(x is not None for x in out.extras["loss_history"]["neighbour_contrastive"])
    strict = _fit(views, mask, neighbour_drop_last=True)  # the code's loader: zero batches
    assert strict.extras["loss_history"]["neighbour_contrastive"] == [None, None]
    assert strict.labels.shape == (40,)


def test_same_seed_same_labels_and_caller_rng_untouched():
    mask = _mask(40, 5, n_complete=24)
    views, _ = _views(40, 5, mask)
    assert_seeded(lambda seed: _fit(views, mask, seed=seed), 7)


def test_bf16_runs_the_second_order_step():
    mask = _mask(40, 6, n_complete=20)
    views, _ = _views(40, 6, mask)
    inp = MethodInput(views=views, mask=mask, n_clusters=K, options=TINY, seed=0, device=torch.device("cpu"),
                      precision="bf16", progress=QuietProgress())
    out = SPEC.fit_predict(inp)
    assert out.labels.shape == (40,) and all(math.isfinite(x) for x in out.extras["loss_history"]["bilevel"])
    with pytest.raises(MvbenchError):
        SPEC.fit_predict(MethodInput(views=views, mask=mask, n_clusters=K, options=TINY, seed=0,
                                     device=torch.device("cpu"), precision="fp8", progress=QuietProgress()))


def test_scaling_uses_observed_rows_and_scale_fit_all_checks_the_range():
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    views = [torch.tensor([[2.0], [4.0], [NAN], [6.0]]), torch.tensor([[1.0], [NAN], [3.0], [3.0]])]
    scaled = scaled_views(views, mask, "observed")
    torch.testing.assert_close(scaled[0][:, 0], torch.tensor([0.0, 0.5, 0.0, 1.0]))
    torch.testing.assert_close(scaled[1][:, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(MvbenchError, match="dataset.preprocess=minmax"):
        scaled_views(views, mask, "all")
    unit = [torch.nan_to_num(x) / 10 for x in views]
    torch.testing.assert_close(scaled_views(unit, mask, "all")[0], unit[0])


def test_input_errors():
    mask = torch.ones(6, 3, dtype=torch.bool)
    mask[1:, 0] = False  # a single complete sample
    views, _ = _views(6, 0, mask)
    with pytest.raises(MvbenchError, match="at least 2"):
        _fit(views, mask)
    full = torch.ones(6, 3, dtype=torch.bool)
    views, _ = _views(6, 0, full)
    with pytest.raises(MvbenchError, match="keep one"):
        _fit(views, full, feature_term=False, label_term=False, balance=False)
    with pytest.raises(MvbenchError, match="did you mean"):
        Config.from_options({"iteratons": 3})


def test_complete_data_and_fewer_samples_than_a_batch_train():
    mask = torch.ones(12, 3, dtype=torch.bool)
    views, _ = _views(12, 6, mask)
    out = _fit(views, mask)
    assert out.labels.shape == (12,) and "imputation" not in out.extras
    assert len(out.extras["loss_history"]["bilevel"]) == 4


def test_spec_presets_and_variants():
    assert SPEC.handles_missing and SPEC.name == "dsimvc" and SPEC.version == 1
    assert dsimvc.mvbench_methods() == [SPEC]
    defaults = resolve_options(SPEC.options, {})
    assert (defaults["pretrain_epochs"], defaults["initial_epochs"], defaults["iterations"]) == (100, 100, 200)
    assert (defaults["knn_k"], defaults["topk"], defaults["batch_size"]) == (3, 600, 256)
    assert (defaults["lr"], defaults["meta_lr"], defaults["wnet_lr"]) == (3e-4, 1e-3, 4e-4)
    assert SPEC.presets["mnist-usps"] == {"pretrain_epochs": 100, "initial_epochs": 80, "iterations": 200}
    for name in ("synthetic3d", "cora", "ngs"):
        assert SPEC.presets[name] == {"pretrain_epochs": 100, "initial_epochs": 30, "iterations": 100}
    for variant in SPEC.variants.values():
        resolve_options(SPEC.options, variant.options)
    assert SPEC.variants["dsimvc-completeOnly"].options == {"weighting": "complete_only"}
    ablations = {o.name for o in SPEC.options if o.ablation}
    assert ablations == {"weighting", "feature_term", "label_term", "balance"}


def test_tiny_cli_run_with_the_dsimvc_mask(cli, tmp_path):
    tiny = [f"--set={name}={value}" for name, value in
            {"dataset.samples": 60, "dataset.dims": 5, "hidden": 12, "feature_dim": 8, "high_dim": 4,
             "batch_size": 16, "pretrain_epochs": 1, "neighbour_mse_epochs": 1, "initial_epochs": 1,
             "iterations": 2}.items()]
    code, _, err = cli("-p", "mvbench_plugins.methods.dsimvc", "-p", "mvbench_plugins.missingness.dsimvc_mask",
                       "run", "--method", "dsimvc", "--dataset", "synthetic", "--missing", "dsimvc-mask",
                       "--rate", "0.5", "--seeds", "2", *tiny, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["seed"] for r in records] == [0, 1] and all(r["status"] == "ok" for r in records)
    assert all(r["missing"] == "dsimvc-mask" and r["incomplete_fraction"] == pytest.approx(0.5) for r in records)
    assert all(r["fill"] is None for r in records)
    assert records[0]["missing_definition"] == dsimvc_mask.DEFINITION


# --- the dsimvc-mask mechanism --------------------------------------------------------------

REGISTRY = build_registry(objects=[("dsimvc_mask", dsimvc_mask)])


def _toy(n: int, n_views: int, name: str = "toy") -> Dataset:
    views = [np.zeros((n, 2), dtype=np.float32) for _ in range(n_views)]
    return Dataset(name=name, views=views, labels=np.zeros(n, dtype=np.int64), n_clusters=1)


def _dsimvc_mask(data: Dataset, seed: int, rate: float) -> np.ndarray:
    spec = REGISTRY.mechanism("dsimvc-mask")
    return make_mask(data, spec, resolve_options(spec.options, {"rate": rate}), seed)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 80), n_views=st.integers(2, 6), rate=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_mask_invariants(n, n_views, rate, seed):
    mask = _dsimvc_mask(_toy(n, n_views), seed, rate)
    kept = mask.sum(axis=1)
    incomplete = kept < n_views
    assert incomplete.sum() == math.floor(n * rate)
    assert ((kept[incomplete] >= 1) & (kept[incomplete] <= n_views - 1)).all()
    np.testing.assert_array_equal(mask, _dsimvc_mask(_toy(n, n_views), seed, rate))


def test_mask_seeding_and_kept_count_distribution():
    data = _toy(4000, 4)
    a = _dsimvc_mask(data, 0, 0.5)
    assert not np.array_equal(a, _dsimvc_mask(data, 1, 0.5))
    assert not np.array_equal(a, _dsimvc_mask(_toy(4000, 4, name="other"), 0, 0.5))
    kept = a.sum(axis=1)[a.sum(axis=1) < 4]
    shares = np.bincount(kept, minlength=4)[1:] / len(kept)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.04)  # uniform kept count on 1..V-1
    two = _dsimvc_mask(_toy(2000, 2), 3, 0.5)
    one_view = two[two.sum(axis=1) == 1]
    assert abs(one_view[:, 0].mean() - 0.5) < 0.05  # V = 2: each view kept half the time
    assert REGISTRY.mechanism("dsimvc-mask").legacy_seed is False


def test_mask_needs_two_views_and_rate_zero_keeps_everything():
    with pytest.raises(MvbenchError, match="at least 2 views"):
        _dsimvc_mask(_toy(10, 1), 0, 0.5)
    assert _dsimvc_mask(_toy(10, 1), 0, 0.0).all()
    assert _dsimvc_mask(_toy(10, 3), 0, 0.05).all()  # floor(0.5) = 0
