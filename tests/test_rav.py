"""RAV: its losses against naive loop implementations, W, the ablations, the NaN guard and a
tiny end-to-end run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import normalized_mutual_info_score

from mvbench.options import resolve_options
from mvbench.progress import QuietProgress
from mvbench.specs import MethodInput
from mvbench_plugins.methods import rav, rav_losses


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _naive_ls(s_views: torch.Tensor, s: torch.Tensor, tau: float, literal: bool) -> float:
    """L_S written as in the paper, one scalar at a time."""
    sv, sg = s_views.tolist(), s.tolist()
    b = len(sg)
    total = 0.0
    for rows in sv:
        for i in range(b):
            den = sum(math.exp(_cos(rows[i], sg[k]) / tau) for k in range(b))
            if literal:
                den -= math.exp(1 / tau)
            total += -math.log(math.exp(_cos(rows[i], sg[i]) / tau) / den)
    return total / b


def _naive_directional(qa: torch.Tensor, qb: torch.Tensor, tau: float) -> float:
    """Cluster contrast anchored in view a: columns as vectors, NT-Xent, self excluded."""
    ca, cb = qa.T.tolist(), qb.T.tolist()
    k = len(ca)
    loss = 0.0
    for j in range(k):
        den = sum(math.exp(_cos(ca[j], cb[m]) / tau) for m in range(k))
        den += sum(math.exp(_cos(ca[j], ca[m]) / tau) for m in range(k) if m != j)
        loss += -math.log(math.exp(_cos(ca[j], cb[j]) / tau) / den)
    return loss / k


def _entropy_of_mean(q: torch.Tensor) -> float:
    p = q.mean(0).tolist()
    return -sum(x * math.log(x) for x in p)


def test_relationship_matrices_hand_case() -> None:
    # B = 3, V = 2, f = 1: squared distances written out by hand.
    z = torch.tensor([[[0.0], [1.0], [3.0]], [[0.0], [2.0], [2.0]]])
    s_views, s = rav_losses.relationship_matrices(z, sigma=2.0)
    e = math.exp
    expected_v0 = [[1, e(-0.5), e(-4.5)], [e(-0.5), 1, e(-2)], [e(-4.5), e(-2), 1]]
    expected_v1 = [[1, e(-2), e(-2)], [e(-2), 1, 1], [e(-2), 1, 1]]
    assert torch.allclose(s_views[0], torch.tensor(expected_v0), atol=1e-6)
    assert torch.allclose(s_views[1], torch.tensor(expected_v1), atol=1e-6)
    # Global S = kernel on the concatenation = product of the per-view kernels (one sigma).
    concat = torch.cat([z[0], z[1]], dim=1)
    assert torch.allclose(s, torch.exp(-torch.cdist(concat, concat) ** 2 / 2.0), atol=1e-6)
    assert torch.allclose(s, s_views.prod(0), atol=1e-6)
    off_v0 = 2 * (e(-0.5) + e(-4.5) + e(-2))
    off_v1 = 2 * (e(-2) + e(-2) + 1)
    assert rav_losses.mean_off_diagonal(s_views).item() == pytest.approx((off_v0 + off_v1) / 12, rel=1e-6)


def test_median_heuristic_avoids_identity_kernel() -> None:
    z = torch.randn(2, 16, 512, generator=torch.Generator().manual_seed(0)) * 10
    s_fixed, _ = rav_losses.relationship_matrices(z, 1.0, "fixed")
    s_median, s_all = rav_losses.relationship_matrices(z, 1.0, "median")
    off = ~torch.eye(16, dtype=torch.bool)
    assert float(s_fixed[:, off].max()) < 1e-30  # raw 512-d features: S^v is the identity
    assert 0.2 < float(s_median[:, off].median()) < 0.5  # exp(-1) at the median distance
    assert 0.2 < float(s_all[off].median()) < 0.5


@pytest.mark.parametrize("denominator", ["literal", "infonce"])
def test_relationship_loss_matches_naive_loop(denominator: str) -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 3, 4, generator=g)
    s_views, s = rav_losses.relationship_matrices(z, sigma=8.0)
    # tau = 2: the literal denominator stays positive at B = 3, so no guard is involved.
    got = rav_losses.relationship_loss(s_views, s, tau=2.0, denominator=denominator)
    expected = _naive_ls(s_views.double(), s.double(), 2.0, literal=denominator == "literal")
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_literal_denominator_guard_keeps_loss_finite() -> None:
    # Flat S^v rows against a near-identity S at B = 3, tau = 0.25: every cosine is about
    # 1/sqrt(3), so sum_k exp(c_ik / tau) ~ 30 < e^4 and the unguarded literal denominator is
    # negative.
    s_views = torch.full((2, 3, 3), 0.1)
    s = torch.eye(3) + 0.01
    cos = F.normalize(s_views, dim=-1) @ F.normalize(s, dim=-1).T
    total = torch.exp(cos / 0.25).sum(-1)
    assert float((total - math.exp(4.0)).max()) < 0
    loss = rav_losses.relationship_loss(s_views, s, tau=0.25, denominator="literal")
    floored = torch.log(rav_losses.LS_FLOOR * total) - torch.diagonal(cos, dim1=-2, dim2=-1) / 0.25
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(floored.sum(0).mean().item(), rel=1e-5)
    # End to end through the kernel, with gradients: still finite.
    z = (torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(2)) * 0.1).requires_grad_()
    s_views, s = rav_losses.relationship_matrices(z, sigma=1.0)
    loss = rav_losses.relationship_loss(s_views, s, tau=0.1, denominator="literal")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_view_distances_and_weights() -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(3, 5, 4, generator=g)
    z[2] += 3.0  # view 2 sits far from the others
    wd = rav_losses.view_distances(z, "l1")
    naive = torch.zeros(3, 3)
    for v in range(3):
        for u in range(3):
            naive[v, u] = sum(
                (z[v, i] - z[u, k]).abs().sum() for i in range(5) for k in range(5)
            ) / 25
    assert torch.allclose(wd, naive, atol=1e-5)
    assert torch.equal(wd, wd.T)
    assert not wd.requires_grad
    for normalize in rav_losses.W_NORMALIZATIONS:
        w = rav_losses.view_weights(wd, temperature=2.0, normalize=normalize, feature_dim=4)
        assert (w >= 0).all()
        assert torch.allclose(w.sum(1), torch.ones(3))
    w = rav_losses.view_weights(wd, temperature=1.0)
    assert torch.allclose(w, torch.softmax(-naive, dim=1), atol=1e-5)
    assert w[0, 2] < w[0, 1] and w[1, 2] < w[1, 0]


def test_energy_normalisation_does_not_reward_a_concentrated_view() -> None:
    # Views 0 and 1 come from one distribution; view 2 is a tight cluster at the same centre.
    # Raw WD makes the tight view the nearest to everything; the energy distance makes it the
    # odd one out.
    g = torch.Generator().manual_seed(5)
    z = torch.stack([torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g),
                     0.05 * torch.randn(64, 8, generator=g)])
    wd = rav_losses.view_distances(z, "l1")
    raw = rav_losses.view_weights(wd, normalize="mean")
    energy = rav_losses.view_weights(wd, normalize="energy")
    assert raw[0].argmax() == 2 and raw[1].argmax() == 2
    assert energy[0, 2] < energy[0, 1] and energy[1, 2] < energy[1, 0]
    assert torch.allclose(torch.diagonal(energy), energy.max(dim=1).values)


def test_cluster_loss_matches_naive_formula() -> None:
    g = torch.Generator().manual_seed(4)
    n_views, b, k, tau = 3, 4, 3, 0.5
    q = torch.softmax(torch.randn(n_views, b, k, generator=g), dim=-1)
    w = torch.softmax(torch.randn(n_views, n_views, generator=g), dim=1)
    parts = rav_losses.cluster_loss(q, w, tau)
    contrast = 0.0
    for v in range(n_views):
        for u in range(n_views):
            if u != v:
                w_bar = 0.5 * (float(w[v, u]) + float(w[u, v]))
                contrast += 0.5 * w_bar * _naive_directional(q[v].double(), q[u].double(), tau)
    entropy = -sum(_entropy_of_mean(q[v].double()) for v in range(n_views))
    assert parts["contrast"].item() == pytest.approx(contrast, rel=1e-5)
    assert parts["entropy"].item() == pytest.approx(entropy, rel=1e-5)
    uniform = rav_losses.cluster_loss(q, None, tau)["contrast"]
    flat = rav_losses.cluster_loss(q, torch.full((3, 3), 1 / 3), tau)["contrast"]
    assert uniform.item() == pytest.approx(flat.item())


def _opts(**given) -> dict:
    base = {"pre_epochs": 2, "epochs": 2, "hidden": [32, 32], "feature_dim": 16, "batch_size": 64}
    return resolve_options(rav.OPTIONS, {**base, **given}, owner="rav")


def _toy(n: int = 240, n_views: int = 3, seed: int = 0) -> tuple[list[torch.Tensor], np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    views = [(torch.randn(3, 10, generator=g) * 4)[y] + torch.randn(n, 10, generator=g) for _ in range(n_views)]
    return views, y.numpy()


def _forbid(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("must not be computed")

    for name in names:
        monkeypatch.setattr(rav_losses, name, boom)


def _parts(opts: dict) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    views, _ = _toy(32)
    model = rav.RAVModel([10, 10, 10], tuple(opts["hidden"]), opts["feature_dim"], 3)
    return rav.batch_losses(model, views, opts, full=True)


def test_full_loss_has_every_part() -> None:
    opts = _opts(lambda_1=0.5, lambda_2=0.25)
    parts = _parts(opts)
    assert {"rec", "q", "s", "w", "total"} <= parts.keys()
    expected = parts["rec"] + 0.5 * parts["q"] + 0.25 * parts["s"]
    assert parts["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_ablation_lambda_2_zero_skips_s(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid(monkeypatch, "relationship_matrices", "relationship_loss")
    parts = _parts(_opts(lambda_2=0.0))
    assert "s" not in parts and "q" in parts


def test_ablation_lambda_1_zero_skips_q_and_w(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid(monkeypatch, "view_distances", "view_weights", "cluster_loss")
    parts = _parts(_opts(lambda_1=0.0))
    assert "q" not in parts and "w" not in parts and "s" in parts
    assert parts["total"].item() == pytest.approx((parts["rec"] + parts["s"]).item(), rel=1e-6)


def test_ablation_uniform_weighting_skips_w(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid(monkeypatch, "view_distances", "view_weights")
    parts = _parts(_opts(view_weighting="uniform"))
    assert "q" in parts and "w" not in parts


@pytest.mark.parametrize(("space", "last_dim"), [("features", 16), ("assignments", 3)])
def test_w_space_chooses_what_the_view_distance_compares(monkeypatch: pytest.MonkeyPatch, space: str,
                                                          last_dim: int) -> None:
    seen = []
    distances = rav_losses.view_distances
    monkeypatch.setattr(rav_losses, "view_distances", lambda z, norm: seen.append(z) or distances(z, norm))
    _parts(_opts(w_space=space))
    (compared,) = seen
    assert compared.shape == (3, 32, last_dim)
    if space == "assignments":
        assert torch.allclose(compared.sum(-1), torch.ones(3, 32))


@pytest.mark.parametrize(("z_normalize", "scope", "unit_rows"),
                         [(True, "both", True), (True, "kernel", False), (False, "both", False)])
def test_z_normalize_reaches_the_view_distance_unless_scoped_to_the_kernel(
        monkeypatch: pytest.MonkeyPatch, z_normalize: bool, scope: str, unit_rows: bool) -> None:
    seen = []
    distances = rav_losses.view_distances
    monkeypatch.setattr(rav_losses, "view_distances", lambda z, norm: seen.append((z, norm)) or distances(z, norm))
    _parts(_opts(z_normalize=z_normalize, normalize_scope=scope))
    ((compared, norm),) = seen
    assert norm == "l2"
    assert torch.allclose(compared.norm(dim=-1), torch.ones(3, 32), atol=1e-5) == unit_rows


def test_wd_norm_on_a_hand_computed_case() -> None:
    # View 0: the points (0, 0) and (3, 4); view 1: (0, 0) twice. Pairwise Euclidean distances
    # across views are 0, 0, 5, 5 (mean 2.5) and L1 distances 0, 0, 7, 7 (mean 3.5); within
    # view 0 they are 0, 5, 5, 0 (L2, mean 2.5) and 0, 7, 7, 0 (L1, mean 3.5); view 1 has 0.
    z = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(rav_losses.view_distances(z, "l2"), torch.tensor([[2.5, 2.5], [2.5, 0.0]]))
    assert torch.allclose(rav_losses.view_distances(z, "l1"), torch.tensor([[3.5, 3.5], [3.5, 0.0]]))
    assert torch.allclose(rav_losses.view_distances(z), rav_losses.view_distances(z, "l2"))
    with pytest.raises(ValueError, match="l2"):
        rav_losses.view_distances(z, "l3")


def _run(views: list[torch.Tensor], opts: dict, seed: int = 0):
    return rav.fit_predict(
        MethodInput(
            views=views, mask=torch.ones(len(views[0]), len(views), dtype=torch.bool), n_clusters=3,
            options=opts, seed=seed, device=torch.device("cpu"), precision="fp32", progress=QuietProgress(),
        )
    )


def test_fit_predict_end_to_end_and_deterministic() -> None:
    views, y = _toy()
    # Long enough for every one of seeds 0-4 to pass 0.6 NMI at the defaults (3 + 3 epochs
    # pass only by a seed's luck).
    opts = _opts(pre_epochs=10, epochs=20)
    out = _run(views, opts)
    assert out.labels.dtype == np.int64 and out.labels.shape == (len(y),)
    assert normalized_mutual_info_score(y, out.labels) > 0.5
    w = np.array(out.extras["view_weights"])
    assert w.shape == (3, 3) and np.allclose(w.sum(1), 1.0)
    assert len(out.extras["view_weight_per_view"]) == 3
    history = out.extras["loss_history"]
    assert len(history["pretrain"]["rec"]) == 10 and len(history["train"]["s"]) == 20
    assert [len(v) for v in out.extras["epoch_seconds"].values()] == [10, 20]
    again = _run(views, opts)
    assert np.array_equal(out.labels, again.labels)
    assert again.extras["loss_history"] == history


def test_w_on_assignments_gives_a_pure_noise_view_the_lowest_weight() -> None:
    # Two informative views and one of pure noise, all standardised. The noise view's
    # assignments carry no cluster structure, so their distribution is far from the others'.
    views, _ = _toy()
    g = torch.Generator().manual_seed(1)
    views = [(v - v.mean(0)) / v.std(0) for v in (*views[:2], torch.randn(240, 10, generator=g))]
    opts = _opts(pre_epochs=20, epochs=100, z_normalize=True, w_normalize="energy", w_space="assignments")
    weights = _run(views, opts).extras["view_weight_per_view"]
    assert min(range(3), key=weights.__getitem__) == 2 and weights[2] < 0.8 * min(weights[:2])


def test_bf16_run_is_finite() -> None:
    views, _ = _toy(128)
    out = rav.fit_predict(
        MethodInput(
            views=views, mask=torch.ones(128, 3, dtype=torch.bool), n_clusters=3, options=_opts(),
            seed=1, device=torch.device("cpu"), precision="bf16", progress=QuietProgress(),
        )
    )
    assert all(math.isfinite(x) for x in out.extras["loss_history"]["train"]["total"])


def test_plugin_registration() -> None:
    (spec,) = rav.mvbench_methods()
    assert spec.name == "rav" and not spec.handles_missing and spec.version == 3
    defaults = resolve_options(spec.options)
    assert defaults["lambda_1"] == 1.0 and defaults["lambda_2"] == 1.0
    assert defaults["z_normalize"] is True and defaults["normalize_scope"] == "both"
    assert defaults["wd_norm"] == "l2" and defaults["ls_denominator"] == "literal"
    assert defaults["hidden"] == (500, 500, 2000) and defaults["feature_dim"] == 512
    assert {"rav-literal", "rav-stable", "rav-noLS", "rav-noLQ", "rav-uniformW"} <= set(spec.variants)
    literal = resolve_options(spec.options, spec.variants["rav-literal"].options)
    assert literal["z_normalize"] is False and literal["wd_norm"] == "l1"
    assert spec.variants["rav-noLS"].published == "without L_S"
