"""The losses specific to RAV: relationship matrices and their alignment loss L_S, the
view-distance weights W and the weighted cluster-level loss L_Q.

All functions take the per-view tensors stacked on a leading view axis (V x B x ...), so every
view is handled by one batched operation. Kernels, exponentials and softmaxes run in float32
with autocast off: under bf16 the Gaussian kernel of large squared distances and the
``exp(1/tau)`` subtraction of the literal L_S lose all their precision.
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor

from mvbench.nn import cluster_contrastive_loss, entropy_of_mean

SIGMA_HEURISTICS = ("fixed", "median")
LS_DENOMINATORS = ("literal", "infonce")
W_NORMALIZATIONS = ("none", "dim", "mean", "energy")
WD_NORMS = ("l2", "l1")

# Floor of the literal L_S denominator, as a fraction of the full InfoNCE denominator
# sum_k exp(c_ik / tau). See relationship_loss for why it exists and when it is active.
LS_FLOOR = 1e-3


def _fp32_off(z: Tensor) -> torch.autocast:
    return torch.autocast(z.device.type, enabled=False)


def pairwise_sq_dists(z: Tensor) -> Tensor:
    """Squared Euclidean distances within each view: (V, B, f) -> (V, B, B), diagonal exactly 0.

    Uses the Gram-matrix expansion (one batched matmul); rounding can make it slightly negative,
    hence the clamp, and the diagonal is zeroed so that ``S^v[i, i] = 1`` exactly.
    """
    z = z.float()
    sq = (z * z).sum(-1)
    d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2.0 * (z @ z.transpose(-1, -2))
    off_diagonal = ~torch.eye(z.shape[-2], dtype=torch.bool, device=z.device)
    return d2.clamp_min(0.0) * off_diagonal


def _median_off_diagonal(d2: Tensor) -> Tensor:
    """Median of the off-diagonal entries of each (B, B) matrix of ``d2`` (..., B, B)."""
    b = d2.shape[-1]
    if b < 2:
        return torch.ones(d2.shape[:-2], device=d2.device)
    off = ~torch.eye(b, dtype=torch.bool, device=d2.device)
    values = d2[..., off].detach()
    return values.median(dim=-1).values.clamp_min(torch.finfo(values.dtype).tiny)


def mean_off_diagonal(m: Tensor) -> Tensor:
    """Mean of the off-diagonal entries of the (..., B, B) matrices ``m`` (0 when B = 1)."""
    b = m.shape[-1]
    if b < 2:
        return m.new_zeros(())
    return (m.sum() - torch.diagonal(m, dim1=-2, dim2=-1).sum()) / (m[..., 0, 0].numel() * b * (b - 1))


def relationship_matrices(
    z: Tensor, sigma: float = 1.0, heuristic: str = "fixed"
) -> tuple[Tensor, Tensor]:
    """Per-view relationship matrices ``S^v`` (V, B, B) and the global ``S`` (B, B).

    ``S^v[i, k] = exp(-||z_i^v - z_k^v||^2 / sigma)``; ``S`` is the same kernel on the
    concatenation of all views' features, i.e. ``exp(-sum_v d2^v / sigma)`` (with one sigma
    this is the elementwise product of the ``S^v``).

    ``heuristic="median"``: each kernel's bandwidth is ``sigma`` times the median of its
    off-diagonal squared distances in the batch (per view for ``S^v``, of the summed distances
    for ``S``; treated as a constant, no gradient), so the kernel neither collapses to the
    identity nor to all-ones whatever the scale of Z.
    """
    if heuristic not in SIGMA_HEURISTICS:
        raise ValueError(f"unknown sigma heuristic {heuristic!r}; choose one of {SIGMA_HEURISTICS}")
    with _fp32_off(z):
        d2 = pairwise_sq_dists(z)
        d2_all = d2.sum(0)
        if heuristic == "fixed":
            return torch.exp(-d2 / sigma), torch.exp(-d2_all / sigma)
        bw_views = sigma * _median_off_diagonal(d2)
        bw_all = sigma * _median_off_diagonal(d2_all)
        return torch.exp(-d2 / bw_views[:, None, None]), torch.exp(-d2_all / bw_all)


def relationship_loss(
    s_views: Tensor, s: Tensor, tau: float = 0.5, denominator: str = "literal"
) -> Tensor:
    """``L_S``: rows of each ``S^v`` contrasted against the rows of ``S``.

    With ``c^v_ik = cos(S^v_i, S_k)`` and ``a = 1 / tau``:
    ``L_S = (1/B) sum_v sum_i [ log D^v_i - c^v_ii / tau ]`` where

    - ``denominator="literal"`` (the paper): ``D^v_i = sum_k exp(c^v_ik / tau) - e^a``;
    - ``denominator="infonce"``: ``D^v_i = sum_k exp(c^v_ik / tau)`` (positive included).

    Guard of the literal form: the rows of S are positive, so every cosine lies in [0, 1]
    and each of the B - 1 non-positive terms is >= 1; the literal D is then >= B - e^a and
    only reaches <= 0 for tiny batches (B <= 7 at tau = 0.5) or small tau. D is floored at
    ``LS_FLOOR`` (1e-3) times the InfoNCE denominator, so a row's term is never more than
    log(1000) below its InfoNCE value and never NaN/inf; at the defaults (B = 256, tau = 0.5)
    the floor is never reached. Computed in log space with the usual max shift.
    """
    if denominator not in LS_DENOMINATORS:
        raise ValueError(f"unknown L_S denominator {denominator!r}; choose one of {LS_DENOMINATORS}")
    with _fp32_off(s):
        rows_v = F.normalize(s_views.float(), dim=-1)
        rows = F.normalize(s.float(), dim=-1)
        logits = rows_v @ rows.T / tau  # (V, B, B): anchor row i of S^v vs row k of S
        positive = torch.diagonal(logits, dim1=-2, dim2=-1)
        if denominator == "infonce":
            log_den = torch.logsumexp(logits, dim=-1)
        else:
            shift = logits.amax(dim=-1).clamp_min(1.0 / tau)
            total = torch.exp(logits - shift[..., None]).sum(-1)
            literal = total - torch.exp(1.0 / tau - shift)
            log_den = shift + torch.log(torch.maximum(literal, LS_FLOOR * total))
        return (log_den - positive).sum(0).mean()


def _within_view_mean_l1(z: Tensor) -> Tensor:
    """``(1/B^2) sum_i sum_k |z_i - z_k|_1`` of each view of ``z`` (V, B, f) -> (V,).

    Per coordinate, with the B values sorted ascending, ``sum_{i,k} |x_i - x_k| =
    2 sum_j (2j - B + 1) x_(j)`` (j 0-based): O(B log B) instead of a B x B distance matrix.
    """
    b = z.shape[1]
    ordered = z.sort(dim=1).values
    coef = 2.0 * torch.arange(b, device=z.device, dtype=z.dtype) - (b - 1)
    return 2.0 * (ordered * coef[:, None]).sum(dim=(1, 2)) / (b * b)


@torch.no_grad()
def view_distances(z: Tensor, norm: str = "l2") -> Tensor:
    """``WD`` (V, V): mean pairwise distance between the rows of ``Z^v`` and of ``Z^u``, with the
    Euclidean (``l2``) or the L1 norm.

    All pairs go through one batched ``torch.cdist`` call over the upper triangle and are
    mirrored (the mean over all (i, k) pairs is symmetric). For L1 the V diagonal entries use the
    exact sorted-values formula of :func:`_within_view_mean_l1`, which costs a sort instead of
    V more cdist calls (cdist p=1 is the slowest part of a batch on CPU). No gradient flows
    through W.
    """
    if norm not in WD_NORMS:
        raise ValueError(f"unknown WD norm {norm!r}; choose one of {WD_NORMS}")
    n_views = z.shape[0]
    with _fp32_off(z):
        zf = z.detach().float()
        if norm == "l1":
            wd = torch.diag(_within_view_mean_l1(zf))
            offset = 1
        else:
            wd = zf.new_zeros((n_views, n_views))
            offset = 0
        a, b = torch.triu_indices(n_views, n_views, offset=offset, device=z.device)
        if len(a):
            means = torch.cdist(zf[a], zf[b], p=1.0 if norm == "l1" else 2.0).mean(dim=(-2, -1))
            wd[a, b] = means
            wd[b, a] = means
    return wd


def view_weights(wd: Tensor, *, temperature: float = 1.0, normalize: str = "none", feature_dim: int = 1) -> Tensor:
    """``w^(v,u) = softmax_u(-WD(v,u) / temperature)`` (V, V), each row a distribution.

    ``normalize`` rescales WD first, since raw mean L1 distances of f-dimensional features are
    large and make the softmax one-hot: ``"dim"`` divides by ``feature_dim`` (mean absolute
    difference per coordinate), ``"mean"`` by the mean of all V x V entries (scale-free).
    ``"energy"`` first subtracts each view's own spread,
    ``WD(v,u) - (WD(v,v) + WD(u,u)) / 2`` (the energy distance, >= 0 and 0 on the diagonal),
    then divides by the mean off-diagonal entry. Raw WD also grows with the spread of each
    view, so the view with the most concentrated features is the "closest" to every view and
    takes the most weight, even when that view is pure noise; the energy distance is 0 only
    between equal distributions and does not reward concentration.
    """
    if normalize not in W_NORMALIZATIONS:
        raise ValueError(f"unknown W normalisation {normalize!r}; choose one of {W_NORMALIZATIONS}")
    if normalize == "dim":
        wd = wd / feature_dim
    elif normalize == "mean":
        wd = wd / wd.mean().clamp_min(torch.finfo(wd.dtype).tiny)
    elif normalize == "energy":
        spread = torch.diagonal(wd)
        wd = (wd - (spread[:, None] + spread[None, :]) / 2).clamp_min(0.0)
        wd = wd / mean_off_diagonal(wd).clamp_min(torch.finfo(wd.dtype).tiny)
    return torch.softmax(-wd / temperature, dim=1)


def cluster_loss(q: Tensor, w: Tensor | None, tau: float = 0.5) -> dict[str, Tensor]:
    """``L_Q`` split into its two named parts, ``{"contrast": ..., "entropy": ...}``.

    ``contrast = 1/2 sum_v sum_{u != v} wbar(v,u) l_c^(v,u)`` with the symmetrised weight
    ``wbar(v,u) = (w^(v,u) + w^(u,v)) / 2`` and ``l_c^(v,u)`` the cluster-level contrast
    anchored in view v. Since wbar is symmetric, each pair v < u contributes ``wbar(v,u)``
    times the mean of its two directional losses, which is the symmetric cluster contrast.
    ``w=None`` means uniform weighting (every w = 1/V, as a softmax over equal distances).
    ``entropy = sum_v -H(p^v)`` with ``p^v`` the batch mean of ``Q^v``.
    """
    n_views = q.shape[0]
    if w is None:
        w_bar = torch.full((n_views, n_views), 1.0 / n_views, device=q.device)
    else:
        w_bar = (w + w.T) / 2
    contrast = q.new_zeros((), dtype=torch.float32)
    for v, u in combinations(range(n_views), 2):
        contrast = contrast + w_bar[v, u] * cluster_contrastive_loss(q[v], q[u], tau)
    entropy = -torch.stack([entropy_of_mean(q_v) for q_v in q]).sum()
    return {"contrast": contrast, "entropy": entropy}
