"""DIMVC-HIA: its parts against loop-based references, NaN safety, ablations, end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from mvbench.errors import MvbenchError
from mvbench.options import resolve_options
from mvbench.progress import QuietProgress
from mvbench.results import read_records
from mvbench.specs import MethodInput
from mvbench_plugins.methods import dimvc_hia
from mvbench_plugins.methods.dimvc_hia import SPEC, Config, batch_losses, forward_batch
from mvbench_plugins.methods.dimvc_hia_parts import (
    ClusterEnergyNets,
    DimvcHiaNet,
    caa_pair_terms,
    cluster_prototypes,
    ebm_loss,
    impute_assignments,
    impute_features,
    sharpen,
    view_similarity,
)

DIMS = (7, 5, 4)
K = 3
TINY = {"hidden": [12], "latent_dim": 8, "low_dim": 6, "batch_size": 16, "pre_epochs": 2,
        "epochs": 3, "lr": 1e-3}


def _random_q(b: int, v: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(b, v, k, generator=g), dim=2)


def _mask(b: int, v: int, seed: int, p: float = 0.35) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, v, generator=g) > p
    mask[~mask.any(dim=1), 0] = True
    return mask


def _reference_similarity(q, mask, label_aware=True, temperature=0.1, reduction="code"):
    """Pair by pair, anchor by anchor, straight from the description."""
    n_views, k = mask.shape[1], q.shape[2]
    sim = torch.zeros(n_views, n_views)
    for a in range(n_views):
        for b in range(n_views):
            rows = mask[:, a] & mask[:, b]
            if a == b or not rows.any():
                continue
            qa, qb = q[rows, a], q[rows, b]
            cols = []
            for x in (qa, qb):
                w = x**2 / x.sum(0)
                cols.append((w / w.sum(1, keepdim=True)).T)
            cols = torch.cat(cols)
            probs = []
            for r in range(2 * k):
                pos = (r + k) % (2 * k)
                terms = [math.exp(float(cols[r] @ cols[pos]) / temperature)]
                for s in range(2 * k):
                    if s in (r, pos):
                        continue
                    if label_aware and int(cols[r].argmax()) == int(cols[s].argmax()):
                        continue
                    terms.append(math.exp(float(cols[r] @ cols[s]) / temperature))
                probs.append(terms[0] / sum(terms))
            sim[a, b] = sum(probs) / (int(rows.sum()) if reduction == "code" else len(probs))
    return sim


def _views(n: int, seed: int, mask: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Clustered data in [0, 1] with NaN in every missing row, and its labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, K, (n,), generator=g)
    views = []
    for v, d in enumerate(DIMS):
        centers = 3 * torch.randn(K, d, generator=g)
        x = torch.sigmoid(centers[y] + 0.5 * torch.randn(n, d, generator=g))
        views.append(torch.where(mask[:, v, None], x, torch.tensor(float("nan"))))
    return views, y


def _fit(views, mask, seed=0, **options):
    inp = MethodInput(views=views, mask=mask, n_clusters=K, options={**TINY, **options}, seed=seed,
                      device=torch.device("cpu"), precision="fp32", progress=QuietProgress())
    return SPEC.fit_predict(inp)


def _model(seed: int = 0) -> DimvcHiaNet:
    torch.manual_seed(seed)
    return DimvcHiaNet(DIMS, [12], 8, 6, K)


def _batch(b: int = 24, seed: int = 0):
    mask = _mask(b, len(DIMS), seed)
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(b, d, generator=g) * mask[:, v, None] for v, d in enumerate(DIMS)]
    return xs, mask


# --- view similarity ------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["code", "mean"])
@pytest.mark.parametrize("label_aware", [True, False])
def test_view_similarity_matches_reference(label_aware, reduction):
    q, mask = _random_q(20, 4, K, 1), _mask(20, 4, 2)
    got = view_similarity(q, mask, label_aware=label_aware, reduction=reduction)
    want = _reference_similarity(q, mask, label_aware, reduction=reduction)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_view_similarity_normalisation_on_a_hand_computed_case():
    # K = 1: each of the 2K = 2 anchors has only its positive, so each positive probability is
    # exactly 1. Views 0 and 1 are co-observed on 4 of the 6 samples, views 0 and 2 on 2:
    # code = (1 + 1) / 4 = 0.5 and (1 + 1) / 2 = 1.0; mean = (1 + 1) / 2 = 1.0 for both.
    q = torch.ones(6, 3, 1)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)
    code = view_similarity(q, mask, reduction="code")
    mean = view_similarity(q, mask, reduction="mean")
    assert code[0, 1] == pytest.approx(0.5) and code[0, 2] == pytest.approx(1.0)
    assert code[1, 2] == pytest.approx(2.0)  # co-observed on sample 3 only: (1 + 1) / 1
    assert torch.allclose(mean[~torch.eye(3, dtype=torch.bool)], torch.ones(6))
    with pytest.raises(ValueError, match="code"):
        view_similarity(q, mask, reduction="median")


def test_view_similarity_passes_gradient_unless_detached():
    q = _random_q(20, 3, K, 4).requires_grad_()
    mask = _mask(20, 3, 5)
    view_similarity(q, mask).sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    # Through the whole CAA loss: the similarity's own gradient changes the parameters' gradient.
    xs, batch_mask = _batch()
    grads = {}
    for detach in (False, True):
        model = _model()
        cfg = Config.from_options({**TINY, "detach_similarity": detach, "alpha": 0.0, "gamma": 0.0})
        batch_losses(model, xs, batch_mask, cfg)["total"].backward()
        grads[detach] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert not torch.allclose(grads[False], grads[True])


def test_view_similarity_symmetric_zero_diagonal_and_zero_without_overlap():
    q = _random_q(30, 3, K, 3)
    mask = torch.ones(30, 3, dtype=torch.bool)
    mask[:15, 1] = False
    mask[15:, 0] = False  # views 0 and 1 are never observed together
    sim = view_similarity(q, mask)
    assert torch.equal(sim, sim.T)
    assert torch.all(sim.diagonal() == 0)
    assert sim[0, 1] == 0
    assert sim[0, 2] > 0 and sim[1, 2] > 0
    assert torch.all((sim >= 0) & (sim <= 1))


def test_label_aware_negatives_change_similarity():
    q, mask = _random_q(12, 2, 4, 5), torch.ones(12, 2, dtype=torch.bool)
    aware = view_similarity(q, mask, label_aware=True)[0, 1]
    plain = view_similarity(q, mask, label_aware=False)[0, 1]
    # fewer negatives can only raise the positive's probability
    assert aware >= plain
    cols = sharpen(q[:, 0]).T
    if len(set(cols.argmax(dim=1).tolist())) < cols.shape[0]:
        assert aware > plain


# --- imputation -----------------------------------------------------------------------------

def test_assignment_imputation_picks_most_similar_observed_view():
    sim = torch.tensor([[0.0, 0.2, 0.9, 0.5],
                        [0.2, 0.0, 0.1, 0.7],
                        [0.9, 0.1, 0.0, 0.3],
                        [0.5, 0.7, 0.3, 0.0]])
    mask = torch.tensor([[False, True, True, True],   # view 0 missing -> view 2 (0.9)
                         [False, True, False, True],  # view 0 -> 3 (0.5 > 0.2); view 2 -> 3 (0.3)
                         [True, False, False, False],  # only view 0 observed: everything from it
                         [True, True, True, True]])
    q = torch.arange(4 * 4 * 2, dtype=torch.float32).reshape(4, 4, 2) * mask[..., None]
    out = impute_assignments(q, mask, sim)
    expected_source = torch.tensor([[2, 1, 2, 3], [3, 1, 3, 3], [0, 0, 0, 0], [0, 1, 2, 3]])
    torch.testing.assert_close(out, q[torch.arange(4)[:, None], expected_source])


def test_prototypes_are_means_of_observed_members():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(10, 2, 3, generator=g)
    cluster = torch.randint(0, K, (10, 2), generator=g)
    mask = _mask(10, 2, 4)
    proto, counts = cluster_prototypes(h, cluster, mask, K)
    for v in range(2):
        for k in range(K):
            members = mask[:, v] & (cluster[:, v] == k)
            assert counts[v, k] == members.sum()
            expected = h[members, v].mean(0) if members.any() else torch.zeros(3)
            torch.testing.assert_close(proto[v, k], expected)


def test_feature_imputation_uses_prototype_and_documented_fallbacks():
    h = torch.tensor([[[1.0, 1.0], [0.0, 0.0]],
                      [[3.0, 3.0], [0.0, 0.0]],
                      [[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False], [True, False], [False, True]])
    # observed samples 0 and 1 of view 0 sit in cluster 0; view 1 has one observed sample
    q = torch.tensor([[[0.9, 0.1], [0.5, 0.5]],
                      [[0.8, 0.2], [0.5, 0.5]],
                      [[0.3, 0.7], [0.4, 0.6]]])
    proto, counts = cluster_prototypes(h, q.argmax(2), mask, 2)
    h_full, cluster, has = impute_features(h, q, mask, proto, counts)
    # sample 2, view 0: most probable cluster 1 has no observed member -> falls back to cluster 0
    assert cluster[2, 0] == 0
    torch.testing.assert_close(h_full[2, 0], torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(h_full[:2, 0], h[:2, 0])  # observed rows untouched
    assert has.all()
    # a view with no observed sample in scope stays unimputed
    mask_none = torch.tensor([[True, False], [True, False], [True, False]])
    proto, counts = cluster_prototypes(h, q.argmax(2), mask_none, 2)
    _, _, has = impute_features(h, q, mask_none, proto, counts)
    assert torch.equal(has, mask_none)


# --- energy networks ------------------------------------------------------------------------

def test_batched_energy_equals_per_sample_nets_and_ebm_loss_definition():
    torch.manual_seed(0)
    nets = ClusterEnergyNets(4, 6)
    h = torch.randn(15, 6)
    cluster = torch.tensor([0, 2, 2, 0, 1, 2, 0, 0, 2, 1, 2, 2, 0, 2, 2])  # cluster 3 empty
    energy, valid = nets(h, cluster)
    per_row = []
    for i in range(15):
        x = h[i]
        for layer, (w, b) in enumerate(zip(nets.weights, nets.biases)):
            x = x @ w[cluster[i]] + b[cluster[i], 0]
            x = F.softplus(x) if layer == len(nets.weights) - 1 else torch.relu(x)
        per_row.append(x[0])
    per_row = torch.stack(per_row)
    torch.testing.assert_close(energy[valid], per_row[torch.argsort(cluster, stable=True)])
    expected = sum((per_row[cluster == k] - per_row[cluster == k].min()).abs().mean()
                   for k in range(3)) / 4
    torch.testing.assert_close(ebm_loss(energy, valid), expected)
    assert torch.all(per_row > 0)


# --- NaN safety -----------------------------------------------------------------------------

def test_missing_rows_are_never_read():
    mask = _mask(40, 3, 7)
    views, _ = _views(40, 0, mask)
    model = _model()
    h, q = model.encode_observed(views, mask)  # NaN rows would poison h and q if encoded
    assert torch.isfinite(h).all() and torch.isfinite(q).all()
    out = _fit(views, mask, prototype_scope="full")
    losses = [x for stage in out.extras["loss_history"].values() for x in stage]
    assert all(math.isfinite(x) for x in losses)
    assert out.labels.shape == (40,) and out.labels.min() >= 0 and out.labels.max() < K


# --- ablations ------------------------------------------------------------------------------

def _cfg(**options) -> Config:
    return Config.from_options({**TINY, **options})


def test_full_loss_has_every_named_part_and_their_sum():
    xs, mask = _batch()
    parts = batch_losses(_model(), xs, mask, _cfg())
    assert set(parts) == {"caa", "rec", "ebm", "total"}
    torch.testing.assert_close(parts["total"], parts["caa"] + parts["rec"] + parts["ebm"])


def test_alpha_zero_never_evaluates_energy_nets(monkeypatch):
    xs, mask = _batch()
    model = _model()

    def boom(*args, **kwargs):
        raise AssertionError("energy nets evaluated with alpha=0")

    monkeypatch.setattr(model.energy, "forward", boom)
    parts = batch_losses(model, xs, mask, _cfg(alpha=0.0))
    assert "ebm" not in parts and {"caa", "rec"} <= set(parts)


def test_gamma_zero_never_decodes(monkeypatch):
    xs, mask = _batch()
    model = _model()
    for ae in model.autoencoders.views:
        monkeypatch.setattr(ae, "decode", lambda z: (_ for _ in ()).throw(AssertionError("decoded")))
    parts = batch_losses(model, xs, mask, _cfg(gamma=0.0))
    assert "rec" not in parts and {"caa", "ebm"} <= set(parts)


def test_beta_zero_removes_caa():
    xs, mask = _batch()
    parts = batch_losses(_model(), xs, mask, _cfg(beta=0.0))
    assert "caa" not in parts
    full = batch_losses(_model(), xs, mask, _cfg())
    torch.testing.assert_close(parts["rec"], full["rec"])


def test_caa_weighting_variants():
    xs, mask = _batch()
    model = _model()
    fwd = forward_batch(model, xs, mask, _cfg())
    terms = {(a, b): caa_pair_terms(fwd.q_full[:, a], fwd.q_full[:, b], 1.0)
             for a in range(3) for b in range(a + 1, 3)}
    beta = 0.01
    code = sum(fwd.sim[a, b] * beta * (lab + prob) for (a, b), (lab, prob) in terms.items())
    paper = sum(fwd.sim[a, b] * beta * lab + beta * prob for (a, b), (lab, prob) in terms.items())
    uniform = sum(beta * (lab + prob) for lab, prob in terms.values())
    for options, expected in [({}, code), ({"caa_weighting": "paper"}, paper),
                              ({"sim_weighting": "uniform"}, uniform)]:
        got = batch_losses(model, xs, mask, _cfg(alpha=0.0, gamma=0.0, **options))["caa"]
        torch.testing.assert_close(got, expected)


def test_assignment_imputation_off_leaves_missing_assignments_empty():
    xs, mask = _batch()
    fwd_on = forward_batch(_model(), xs, mask, _cfg())
    fwd_off = forward_batch(_model(), xs, mask, _cfg(assignment_imputation=False))
    assert torch.all(fwd_off.q_full[~mask] == 0)
    assert torch.allclose(fwd_on.q_full.sum(2), torch.ones(mask.shape))  # every entry imputed


def test_feature_imputation_and_reconstruct_missing_select_rows(monkeypatch):
    xs, mask = _batch()
    model = _model()
    seen = []
    original = model.energy.forward
    monkeypatch.setattr(model.energy, "forward", lambda h, c: seen.append(h.shape[0]) or original(h, c))
    on = batch_losses(model, xs, mask, _cfg())
    off = batch_losses(model, xs, mask, _cfg(feature_imputation=False))
    assert seen == [mask.numel(), int(mask.sum())]
    observed_only = batch_losses(model, xs, mask, _cfg(reconstruct_missing=False))
    torch.testing.assert_close(observed_only["rec"], off["rec"])
    assert not torch.allclose(on["rec"], off["rec"])


# --- end to end -----------------------------------------------------------------------------

def test_end_to_end_random_mask_with_single_view_samples():
    mask = _mask(48, 3, 11, p=0.5)
    assert (mask.sum(1) == 1).any() and (mask.sum(1) == 3).any()
    views, _ = _views(48, 1, mask)
    out = _fit(views, mask)
    assert out.labels.shape == (48,) and out.labels.dtype.kind == "i"
    sim = np.array(out.extras["view_similarity"])
    assert sim.shape == (3, 3) and np.allclose(sim, sim.T) and np.all(np.diag(sim) == 0)
    assert len(out.extras["loss_history"]["pretrain"]) == 2
    assert len(out.extras["loss_history"]["train"]) == 3
    assert set(out.extras["loss_parts"]["train"]) == {"caa", "rec", "ebm"}
    assert len(out.extras["epoch_seconds"]["train"]) == 3


def test_tiny_cli_run_with_mcar(cli, tmp_path):
    tiny = [f"--set={name}={value}" for name, value in
            {"dataset.samples": 60, "dataset.dims": 5, "hidden": 12, "latent_dim": 8, "low_dim": 6,
             "batch_size": 16, "pre_epochs": 2, "epochs": 2}.items()]
    code, _, err = cli("run", "--method", "dimvc-hia", "--dataset", "synthetic", "--missing", "mcar",
                       "--rate", "0.5", "--seeds", "2", *tiny, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["seed"] for r in records] == [0, 1] and all(r["status"] == "ok" for r in records)
    assert all(r["missing"] == "mcar" and r["incomplete_fraction"] == pytest.approx(0.5) for r in records)
    assert all(r["fill"] is None for r in records)  # handles missing views: nothing is filled in
    assert records[0]["method_options"]["hidden"] == [12]


def test_complete_views_and_small_data_train():
    mask = torch.ones(10, 3, dtype=torch.bool)  # fewer samples than one batch, nothing missing
    views, _ = _views(10, 2, mask)
    out = _fit(views, mask)
    assert out.labels.shape == (10,)
    assert len(out.extras["loss_history"]["train"]) == 3


def test_learns_clear_clusters():
    mask = _mask(90, 3, 12, p=0.3)
    views, y = _views(90, 3, mask)
    # alpha=0 keeps it fast: the energy nets are checked on their own above. The similarity is
    # detached here: at this size, the faithful undetached similarity lets the loss lower the
    # CAA weight itself (sim * beta * (L_label + L_prob) falls when sim falls), and the
    # alignment it weights then fades within 30 epochs (ARI 0.02-0.72 over three such sets,
    # against 0.38-0.97 detached).
    out = _fit(views, mask, pre_epochs=5, epochs=30, batch_size=30, lr=1e-2, alpha=0.0,
               detach_similarity=True)
    assert adjusted_rand_score(y.numpy(), out.labels) > 0.7


def test_same_seed_same_labels_on_cpu():
    mask = _mask(40, 3, 13)
    views, _ = _views(40, 4, mask)
    before = torch.get_rng_state()
    a, b = _fit(views, mask, seed=5), _fit(views, mask, seed=5)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    assert np.array_equal(a.labels, b.labels)
    assert a.extras["loss_history"] == b.extras["loss_history"]
    c = _fit(views, mask, seed=6)
    assert c.extras["loss_history"] != a.extras["loss_history"]


def test_spec_options_presets_and_errors():
    assert SPEC.handles_missing and SPEC.name == "dimvc-hia"
    assert dimvc_hia.mvbench_methods() == [SPEC]
    for preset in SPEC.presets.values():
        resolve_options(SPEC.options, preset)
    with pytest.raises(MvbenchError, match="did you mean"):
        Config.from_options({"alpah": 0.1})
    mask = torch.zeros(4, 3, dtype=torch.bool)
    mask[:3, 0] = True
    views, _ = _views(4, 0, mask)
    with pytest.raises(MvbenchError, match="no observed view"):
        _fit(views, mask)
