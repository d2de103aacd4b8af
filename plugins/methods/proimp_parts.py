"""The parts of ProImp: network, losses, prototype matching and imputation.

Notation (D = latent size, K = number of prototypes = clusters, n(.) = L2 row-normalisation):
per view v an encoder gives z^v; the shared projector R gives s = R(n(z^v)); the view's
prototype attention A^v relates s to the normalised prototypes p = n(P^v) and gives the
attention a^v (B x K), the prototype summary of each sample z_c = a V_p (B x D) and the sample
summary of each prototype c_z = a^T V_s (K x D); then h^v = G(n(z_c) + n(s)) and
c^v = n(c_z) + p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from mvbench.errors import MvbenchError
from mvbench.nn import balance_term, instance_contrastive_loss

# The encoder activations of the authors' Autoencoder (their leaky ReLU has slope 0.2).
ENCODER_ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
}


def encoder(in_dim: int, hidden: Sequence[int], latent_dim: int, activation: str, dropout: float) -> nn.Sequential:
    """``in_dim -> hidden... -> latent_dim``: each hidden layer Linear-BN-activation, Dropout
    after every hidden layer but the last, linear latent (the authors' encoder)."""
    layers: list[nn.Module] = []
    sizes = [int(in_dim), *map(int, hidden)]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), ENCODER_ACTIVATIONS[activation]()]
        if i < len(hidden) - 1 and dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-1], int(latent_dim)))
    return nn.Sequential(*layers)


def projection_head(dim: int, depth: int) -> nn.Sequential:
    """``depth`` Linear(dim, dim) layers with BN-ReLU between them (R: 2, H1/H2: 3)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(dim, dim))
        if i < depth - 1:
            layers += [nn.BatchNorm1d(dim), nn.ReLU()]
    return nn.Sequential(*layers)


class PrototypeAttention(nn.Module):
    """One-head cross attention between a batch of samples s (B x D) and K prototypes p (K x D):
    ``a = softmax_K(W_q LN_s(s) (W_k LN_p(p))^T / sqrt(D))``, ``z_c = a W_v LN_p(p)`` and
    ``c_z = a^T W_v' LN_s(s)`` (a sum over the batch). The softmax runs in float32 (under autocast the
    matrix products still run in bf16)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm_sample = nn.LayerNorm(dim)
        self.norm_proto = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value_proto = nn.Linear(dim, dim)
        self.value_sample = nn.Linear(dim, dim)
        self.scale = dim ** -0.5

    def attention(self, s: Tensor, p: Tensor) -> Tensor:
        """a (B x K), rows on the simplex."""
        logits = self.query(self.norm_sample(s)) @ self.key(self.norm_proto(p)).T
        return (logits.float() * self.scale).softmax(dim=1)

    def prototype_values(self, p: Tensor) -> Tensor:
        """``W_v LN_p(p)`` (K x D): what a sample's attention mixes into z_c (and into an imputation)."""
        return self.value_proto(self.norm_proto(p))

    def forward(self, s: Tensor, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(a, z_c, c_z)``."""
        a = self.attention(s, p)
        z_c = a @ self.prototype_values(p)
        c_z = a.T @ self.value_sample(self.norm_sample(s))
        return a, z_c, c_z


@dataclass
class Stream:
    """One view's forward pass on a batch."""

    a: Tensor  # (B, K) attention over the view's prototypes
    h: Tensor  # (B, D) sample representation (before the final normalisation)
    c: Tensor  # (K, D) prototype representation


class ProImpNet(nn.Module):
    """Two view encoders, the shared R, G, H1, H2, and per view the prototypes and attention."""

    def __init__(self, dims: Sequence[int], n_clusters: int, *, hidden: Sequence[int], dim: int,
                 activations: Sequence[str], dropout: float) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(
            encoder(d, hidden, dim, act, dropout) for d, act in zip(dims, activations))
        self.project = projection_head(dim, 2)  # R
        self.fuse = nn.Linear(dim, dim)  # G
        self.instance_head = projection_head(dim, 3)  # H1
        self.prototype_head = projection_head(dim, 3)  # H2
        # Initialised as the weight of a bias-free Linear(D, K), as the authors' prototypes.
        bound = 1.0 / math.sqrt(dim)
        self.prototypes = nn.ParameterList(
            nn.Parameter(torch.empty(n_clusters, dim).uniform_(-bound, bound)) for _ in dims)
        self.attentions = nn.ModuleList(PrototypeAttention(dim) for _ in dims)

    def normalised_prototypes(self, v: int) -> Tensor:
        return F.normalize(self.prototypes[v], dim=1)

    def projected(self, v: int, x: Tensor) -> Tensor:
        """s = R(n(z^v)) for rows x of view v."""
        return self.project(F.normalize(self.encoders[v](x), dim=1))

    def stream(self, v: int, x: Tensor) -> Stream:
        """View v's forward pass on rows x (BN layers use this view's batch statistics)."""
        s = self.projected(v, x)
        p = self.normalised_prototypes(v)
        a, z_c, c_z = self.attentions[v](s, p)
        h = self.fuse(F.normalize(z_c, dim=1) + F.normalize(s, dim=1))
        c = F.normalize(c_z, dim=1) + p
        return Stream(a=a, h=h, c=c)

    def attention_of(self, v: int, x: Tensor) -> Tensor:
        """a^v for rows x of view v (for the prototype matching)."""
        return self.attentions[v].attention(self.projected(v, x), self.normalised_prototypes(v))


# --- losses ---------------------------------------------------------------------------------

def instance_loss(model: ProImpNet, h1: Tensor, h2: Tensor, temperature: float) -> Tensor:
    """L_ins: NT-Xent over ``[n(H1(h^1)); n(H1(h^2))]`` (H1 runs once per view)."""
    u1 = F.normalize(model.instance_head(h1), dim=1)
    u2 = F.normalize(model.instance_head(h2), dim=1)
    return instance_contrastive_loss(u1, u2, temperature)


def attention_regulariser(attentions: Sequence[Tensor], balance: float, sharpness: float) -> Tensor:
    """L_reg = ``balance * 1/2 sum_v (log K - H(mean_i a^v_i)) + sharpness * sum_v mean_i H(a^v_i)``:
    every prototype used on average, each sample attending to few (1e-8 inside the row entropy's
    log, as the authors)."""
    total = torch.zeros((), device=attentions[0].device)
    for a in attentions:
        a = a.float()
        if balance:
            total = total + balance * 0.5 * balance_term(a)
        if sharpness:
            total = total - sharpness * (a * torch.log(a + 1e-8)).sum(dim=1).mean()
    return total


def peaked_prototype_contrast(u: Tensor, w: Tensor, temperature: float, peak: float) -> Tensor:
    """The prototype contrast on given rows: ``u``, ``w`` are (2K, D) L2-normalised, row r of
    ``w`` is the cross-view partner of row r of ``u``, and row (r + K) mod 2K of ``w`` is row r
    of ``u`` itself. ``S = u w^T / temperature``; anchor r has the positive logit
    ``lam - |S_rr - lam|`` with ``lam = peak / temperature`` (largest at cosine ``peak``;
    ``peak = 1`` is the plain positive since a cosine never exceeds 1), its own copy is
    excluded and the other 2K - 2 rows are negatives; cross-entropy averaged over 2K anchors."""
    u, w = u.float(), w.float()
    two_k = u.shape[0]
    sim = u @ w.T / temperature
    lam = peak / temperature
    rows = torch.arange(two_k, device=u.device)
    positive = lam - (sim.diagonal() - lam).abs()
    logits = sim.clone()
    logits[rows, rows] = positive
    logits[rows, (rows + two_k // 2) % two_k] = float("-inf")
    return F.cross_entropy(logits, rows)


def prototype_loss(model: ProImpNet, c1: Tensor, c2: Tensor, matching: Tensor, temperature: float,
                   peak: float) -> Tensor:
    """L_pro: with ``c~ = c^1[pi]`` (view-1 prototypes in view-2 order), ``U = n(H2([c^2; c~]))``
    and ``W = n(H2([c~; c^2]))``. H2 runs once: in training mode its BN statistics are those of
    the same 2K rows either way, so W is U with its halves swapped."""
    u = F.normalize(model.prototype_head(torch.cat([c2, c1[matching]], dim=0)), dim=1)
    k = c2.shape[0]
    w = torch.cat([u[k:], u[:k]], dim=0)
    return peaked_prototype_contrast(u, w, temperature, peak)


# --- prototype matching ----------------------------------------------------------------------

def prototype_counts(assign1: Tensor, assign2: Tensor, n_clusters: int) -> Tensor:
    """C[i, j] = number of samples whose view-1 attention peaks at prototype i and view-2 at j."""
    flat = assign1.long() * n_clusters + assign2.long()
    return torch.bincount(flat, minlength=n_clusters * n_clusters).reshape(n_clusters, n_clusters)


def match_prototypes(counts: Tensor) -> Tensor:
    """pi (K,) with ``pi[j]`` = the view-1 prototype matched to view-2 prototype j, maximising
    ``sum_j C[pi[j], j]`` (Hungarian)."""
    c = counts.cpu().numpy()
    view2, view1 = linear_sum_assignment(c.T, maximize=True)
    matching = np.empty(c.shape[0], dtype=np.int64)
    matching[view2] = view1
    return torch.from_numpy(matching).to(counts.device)


# --- readout ---------------------------------------------------------------------------------

def observed_representation(model: ProImpNet, v: int, x: Tensor) -> Tensor:
    """n(h^v) of observed rows (eval mode)."""
    return F.normalize(model.stream(v, x).h, dim=1)


def imputed_representation(model: ProImpNet, target: int, source_x: Tensor, matching: Tensor,
                           residual: bool) -> Tensor:
    """The target view's representation of samples seen only in the other (source) view:
    the source view's attention a^src, its columns put in target-prototype order through
    ``matching``, mixes the target view's prototype values;
    ``n(G(n(a V_target) + n(s_src)))`` (without ``+ n(s_src)`` when ``residual`` is off)."""
    source = 1 - target
    s = model.projected(source, source_x)
    a = model.attentions[source].attention(s, model.normalised_prototypes(source))
    # Column i of the reordered attention = the source prototype matched to target prototype i.
    to_target_order = matching if source == 0 else torch.argsort(matching)
    a = a[:, to_target_order]
    values = model.attentions[target].prototype_values(model.normalised_prototypes(target))
    mixed = F.normalize(a @ values, dim=1)
    if residual:
        mixed = mixed + F.normalize(s, dim=1)
    return F.normalize(model.fuse(mixed), dim=1)


def check_views(views: Sequence[int], n_views: int) -> tuple[int, int]:
    """The two dataset views ProImp uses, validated."""
    if len(views) != 2 or views[0] == views[1]:
        raise MvbenchError(f"proimp: option views must name two different views, got {list(views)}")
    bad = [v for v in views if not 0 <= v < n_views]
    if bad:
        raise MvbenchError(f"proimp: views {bad} out of range; the dataset has views 0..{n_views - 1}")
    return int(views[0]), int(views[1])
