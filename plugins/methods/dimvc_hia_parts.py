"""The parts of DIMVC-HIA that no other method shares: the network with its K energy networks,
view semantic similarity with label-aware negatives, the two imputation levels, and the EBM and
contrastive-assignment-alignment losses. Batch tensors are laid out (B, V, ...) with missing
entries zero-filled and a (B, V) bool mask saying which entries are real.

Choices the specification leaves open (each also stated where it is made):

- Energy networks are evaluated as one grouped computation: the rows are sorted by cluster
  into a zero-padded (K, M, latent) tensor (M = largest group) and pushed through stacked
  per-cluster weights with ``torch.baddbmm``. Its cost is K * M rows, at most the K * R rows of
  "run every net on every row, then gather" (equal only when one cluster holds every row), and
  it never materialises per-row weight copies (R x latent x 256 floats) as a gather of weights
  would.
- A cluster with no row in the batch adds 0 to ``(1/K) sum_k``; the divisor stays K. The anchor
  ``eps_min`` is not detached (the literal ``|E_k(h) - min E_k|``).
- Level-2 fallback: when the imputed cluster has no observed sample in scope, the next most
  probable cluster (by the imputed q) that has one is used; when the view has no observed
  sample in scope at all, the entry stays unimputed and is left out of reconstruction and EBM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mvbench.nn import MultiViewAutoencoder, cluster_contrastive_loss, entropy_of_mean

SIM_TEMPERATURE = 0.1
ENERGY_HIDDEN = (256, 256, 256)
PROB_KL_WEIGHT = 0.1


class ClusterEnergyNets(nn.Module):
    """K independent MLPs ``latent -> 256 -> 256 -> 256 -> 1`` (ReLU between, softplus at the
    end), stored as stacked weights so that all of them run as one batched matmul chain."""

    def __init__(self, n_clusters: int, in_dim: int, hidden: Sequence[int] = ENERGY_HIDDEN) -> None:
        super().__init__()
        sizes = [int(in_dim), *map(int, hidden), 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            # nn.Linear's default init, drawn independently for every cluster's net.
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n_clusters, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_clusters, 1, b).uniform_(-bound, bound)))

    @property
    def n_clusters(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, h: Tensor, cluster: Tensor) -> tuple[Tensor, Tensor]:
        """Energy of row i of ``h`` (R, latent) under net ``cluster[i]``.

        Returns ``(energy, valid)``, both (K, M): group k holds the rows assigned to cluster k
        in their original order, padded to the largest group; ``valid`` marks real rows.
        """
        k = self.n_clusters
        # Counted by comparison rather than bincount, which reads the largest label back to the
        # host; the padded width below is the one read this layout needs.
        counts = (cluster[:, None] == torch.arange(k, device=cluster.device)).sum(dim=0)
        order = torch.argsort(cluster, stable=True)
        sorted_cluster = cluster[order]
        slot = torch.arange(cluster.numel(), device=h.device) - (counts.cumsum(0) - counts)[sorted_cluster]
        width = max(int(counts.max()), 1) if cluster.numel() else 1
        x = h.new_zeros(k, width, h.shape[1]).index_put((sorted_cluster, slot), h[order])
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            x = F.softplus(x) if i == last else F.relu(x)
        valid = torch.arange(width, device=h.device)[None, :] < counts[:, None]
        return x[..., 0], valid


def ebm_loss(energy: Tensor, valid: Tensor) -> Tensor:
    """``(1/K) sum_k mean_{h in group k} |E_k(h) - min_group E_k|`` on the padded layout of
    :meth:`ClusterEnergyNets.forward`; empty groups add 0."""
    energy = energy.float()
    counts = valid.sum(dim=1)
    eps_min = torch.where(valid, energy, torch.full_like(energy, math.inf)).amin(dim=1)
    eps_min = torch.where(counts > 0, eps_min, torch.zeros_like(eps_min))
    gap = torch.where(valid, (energy - eps_min[:, None]).abs(), torch.zeros_like(energy))
    return (gap.sum(dim=1) / counts.clamp_min(1)).sum() / energy.shape[0]


class DimvcHiaNet(nn.Module):
    """Per-view autoencoders (ReLU after every layer, latent and output included), the shared
    cluster predictor ``latent -> low -> K`` (linear, linear, softmax) and the energy nets."""

    def __init__(self, dims: Sequence[int], hidden: Sequence[int], latent_dim: int, low_dim: int,
                 n_clusters: int) -> None:
        super().__init__()
        self.autoencoders = MultiViewAutoencoder(dims, hidden, latent_dim, activation="relu",
                                                 latent_activation="relu", output_activation="relu")
        self.cluster_head = nn.Sequential(nn.Linear(latent_dim, low_dim), nn.Linear(low_dim, n_clusters))
        self.energy = ClusterEnergyNets(n_clusters, latent_dim)

    @property
    def n_views(self) -> int:
        return len(self.autoencoders.views)

    def encode_observed(self, xs: Sequence[Tensor], mask: Tensor) -> tuple[Tensor, Tensor]:
        """Encode only the observed rows of each view of a batch and predict their clusters.

        Returns ``h`` (B, V, latent) and ``q`` (B, V, K), zero where ``mask`` is False.
        """
        rows, cols, per_view = observed_entries(mask)
        h_obs = torch.cat([ae.encode(x[idx]) for ae, x, idx in zip(self.autoencoders.views, xs, per_view)])
        q_obs = torch.softmax(self.cluster_head(h_obs).float(), dim=1)
        b, v = mask.shape
        h = h_obs.new_zeros(b, v, h_obs.shape[1]).index_put((rows, cols), h_obs)
        q = q_obs.new_zeros(b, v, q_obs.shape[1]).index_put((rows, cols), q_obs)
        return h, q


def observed_entries(mask: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
    """The observed entries of a (B, V) mask grouped by view, rows ascending within a view:
    ``(rows, views, rows of each view)``. Two host reads for all views, where a nonzero per
    view would wait for the device V times."""
    counts = mask.sum(dim=0)
    views, rows = mask.T.nonzero(as_tuple=True)
    return rows, views, list(rows.split(counts.tolist()))


def sharpen(q: Tensor) -> Tensor:
    """DEC target distribution over the rows of ``q`` (..., n, K): ``q^2 / column sum``, rows
    renormalised. All-zero rows (padding) stay zero and do not enter the column sums."""
    tiny = torch.finfo(q.dtype).tiny
    weight = q * q / q.sum(dim=-2, keepdim=True).clamp_min(tiny)
    return weight / weight.sum(dim=-1, keepdim=True).clamp_min(tiny)


def view_pairs(n_views: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Indices (a, b) of the unordered view pairs a < b."""
    a, b = torch.triu_indices(n_views, n_views, offset=1, device=device)
    return a, b


SIM_REDUCTIONS = ("code", "mean")


def view_similarity(q: Tensor, mask: Tensor, *, label_aware: bool = True, normalize: bool = False,
                    reduction: str = "code", temperature: float = SIM_TEMPERATURE) -> Tensor:
    """View semantic similarity (V, V) from assignments ``q`` (B, V, K) and ``mask`` (B, V).

    For each pair, on the samples observed in both views: sharpen each view's q, take the 2K
    columns as vectors, similarity = dot product (cosine with ``normalize``) / ``temperature``;
    the positive of a column is the same cluster in the other view; with ``label_aware``, two
    columns whose largest entry falls on the same sample are not negatives of each other.
    ``reduction="code"`` (the authors' code): sim = the sum of the 2K softmax probabilities of
    the positives divided by the number of samples co-observed in the batch; ``"mean"``: their
    mean over the 2K anchors. Symmetric, zero diagonal, zero for a pair with no co-observed
    sample. All pairs are computed at once. Differentiable: the caller detaches it if wanted.
    """
    if reduction not in SIM_REDUCTIONS:
        raise ValueError(f"unknown similarity reduction {reduction!r}; choose one of {SIM_REDUCTIONS}")
    with torch.autocast(q.device.type, enabled=False):
        return _view_similarity(q.float(), mask, label_aware, normalize, reduction, temperature)


def _view_similarity(q: Tensor, mask: Tensor, label_aware: bool, normalize: bool, reduction: str,
                     temperature: float) -> Tensor:
    n_views, k = mask.shape[1], q.shape[2]
    a, b = view_pairs(n_views, q.device)
    both = (mask[:, a] & mask[:, b]).float()  # (B, P)
    qa = sharpen(q[:, a].permute(1, 0, 2) * both.T[..., None])  # (P, B, K)
    qb = sharpen(q[:, b].permute(1, 0, 2) * both.T[..., None])
    cols = torch.cat([qa, qb], dim=2).transpose(1, 2)  # (P, 2K, B)
    if normalize:
        cols = F.normalize(cols, dim=2)
    logits = cols @ cols.transpose(1, 2) / temperature  # (P, 2K, 2K)
    eye = torch.eye(2 * k, dtype=torch.bool, device=q.device)
    positive = eye.roll(k, dims=1)
    allowed = ~eye
    if label_aware:
        top = cols.argmax(dim=2)  # (P, 2K): the sample carrying each column's largest entry
        allowed = allowed & ((top[:, :, None] != top[:, None, :]) | positive)
    log_prob = torch.log_softmax(logits.masked_fill(~allowed, -math.inf), dim=2)
    positive_prob = log_prob[:, positive].exp()  # (P, 2K)
    co_observed = both.sum(dim=0)  # (P,)
    if reduction == "code":
        sim_pairs = positive_prob.sum(dim=1) / co_observed.clamp_min(1.0)
    else:
        sim_pairs = positive_prob.mean(dim=1)
    sim_pairs = torch.where(co_observed > 0, sim_pairs, torch.zeros_like(sim_pairs))
    sim = q.new_zeros(n_views, n_views)
    sim[a, b] = sim_pairs
    sim[b, a] = sim_pairs
    return sim


def impute_assignments(q: Tensor, mask: Tensor, sim: Tensor) -> Tensor:
    """Level 1: a missing (i, v) takes q from the observed view u of sample i with the highest
    sim(v, u) (ties: the lowest view index). Observed entries are returned unchanged."""
    n_views = mask.shape[1]
    score = sim[None].expand(mask.shape[0], n_views, n_views).masked_fill(~mask[:, None, :], -math.inf)
    own = torch.arange(n_views, device=mask.device).expand_as(mask)
    source = torch.where(mask, own, score.argmax(dim=2))
    return q.gather(1, source[..., None].expand_as(q))


def cluster_prototypes(h: Tensor, cluster: Tensor, mask: Tensor, n_clusters: int) -> tuple[Tensor, Tensor]:
    """Mean feature of the observed entries of each (view, cluster): ``(V, K, latent)`` and the
    counts ``(V, K)`` (a prototype with count 0 is zero). Accumulated in float32."""
    with torch.autocast(h.device.type, enabled=False):
        onehot = F.one_hot(cluster, n_clusters).float() * mask[..., None].float()  # (B, V, K)
        counts = onehot.sum(dim=0)
        sums = torch.einsum("bvk,bvd->vkd", onehot, h.float())
        return sums / counts.clamp_min(1)[..., None], counts


def impute_features(h: Tensor, q: Tensor, mask: Tensor, prototypes: Tensor, counts: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """Level 2: a missing (i, v) gets the prototype of view v for the most probable cluster of
    its (imputed) q among the clusters with an observed sample (the documented fallback).

    Returns ``(h_full (B, V, latent), cluster (B, V), has_feature (B, V))``; ``cluster`` is the
    argmax of q for observed entries and the prototype's cluster for imputed ones;
    ``has_feature`` is False only where the view has no prototype at all.
    """
    available = counts > 0  # (V, K)
    cluster = torch.where(mask, q.argmax(dim=2), q.masked_fill(~available[None], -math.inf).argmax(dim=2))
    views = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    filled = prototypes[views, cluster].to(h.dtype)
    h_full = torch.where(mask[..., None], h, filled)
    return h_full, cluster, mask | available.any(dim=1)[None]


def _kl(p: Tensor, r: Tensor) -> Tensor:
    tiny = torch.finfo(p.dtype).tiny
    return (p * (p.clamp_min(tiny).log() - r.clamp_min(tiny).log())).sum()


def caa_pair_terms(q_a: Tensor, q_b: Tensor, tau_l: float, similarity: str = "cosine"
                   ) -> tuple[Tensor, Tensor]:
    """Contrastive assignment alignment of one view pair on the same rows: ``(L_label, L_prob)``.

    L_label = cluster-level contrast (``similarity``: cosine, or the plain dot product as the
    authors' code uses on MNIST-USPS, / ``tau_l``) on the sharpened q's; L_prob =
    ``-H(p_a) - H(p_b) + 0.1 * (KL(p_a||p_b) + KL(p_b||p_a)) / 2`` with p the column means of
    the sharpened q's.
    """
    s_a, s_b = sharpen(q_a.float()), sharpen(q_b.float())
    label = cluster_contrastive_loss(s_a, s_b, tau_l, similarity=similarity)
    p_a, p_b = s_a.mean(dim=0), s_b.mean(dim=0)
    prob = -entropy_of_mean(s_a) - entropy_of_mean(s_b) + PROB_KL_WEIGHT * 0.5 * (_kl(p_a, p_b) + _kl(p_b, p_a))
    return label, prob
