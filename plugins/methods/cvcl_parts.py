"""The network and the losses of CVCL (Chen et al., ICCV 2023), separate from its training loop.

Soft assignments are laid out (V, B, K): view, sample, cluster. Every loss is computed in
float32 (the network may run under bf16 autocast; the assignments are upcast before softmax).

- :class:`CVCLNet`: per-view autoencoders with a ReLU after every layer (latent and
  reconstruction included) and one cluster head shared by all views (two linear layers, no
  activation between them by default, softmax).
- :func:`cluster_targets`: the DEC sharpening of every view's batch assignments, the P that
  both the contrast and the balance term see.
- :func:`column_contrast`: NT-Xent over the 2K cluster columns of two views' P, with a dot
  product (the reference default) or cosine similarity.
- :func:`negative_entropy_of_mean`: ``sum_j pbar_j log pbar_j`` of the column means of P.
- :func:`assignment_loss_parts`: the weighted contrast and balance sums over view pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mvbench.nn import MultiViewAutoencoder, cluster_contrastive_loss, instance_contrastive_loss, mlp
from mvbench_plugins.methods.dimvc_hia_parts import sharpen

SIMILARITIES = ("dot", "cosine")
HEAD_ACTIVATIONS = ("none", "relu")
# Floor of pbar in pbar log pbar: a cluster that no sample of the batch uses would give 0 * log 0.
PROB_FLOOR = 1e-12


class CVCLNet(nn.Module):
    """Per-view autoencoders ``d_v -> hidden... -> feature_dim`` (ReLU after every layer of
    encoder and decoder, so z >= 0 and xhat >= 0) and the shared head
    ``feature_dim -> head_dim -> K``."""

    def __init__(self, dims: Sequence[int], hidden: Sequence[int], feature_dim: int, head_dim: int,
                 n_clusters: int, *, head_activation: str = "none") -> None:
        super().__init__()
        self.autoencoders = MultiViewAutoencoder(dims, hidden, feature_dim, latent_activation="relu",
                                                 output_activation="relu")
        between = None if head_activation == "none" else head_activation
        self.head = mlp([feature_dim, head_dim, n_clusters], activation=between)

    def assignments(self, zs: Sequence[Tensor]) -> Tensor:
        """Q of every view, (V, B, K) in float32: the head runs once on the stacked features."""
        return torch.softmax(self.head(torch.stack(list(zs))).float(), dim=-1)


def sharpen_fixed_frequency(q: Tensor) -> Tensor:
    """The DEC target of :func:`sharpen` with the cluster frequencies ``f_j = sum_i q_ij``
    held constant: the gradient flows through ``q^2`` and the row normalisation only."""
    tiny = torch.finfo(q.dtype).tiny
    weight = q * q / q.detach().sum(dim=-2, keepdim=True).clamp_min(tiny)
    return weight / weight.sum(dim=-1, keepdim=True).clamp_min(tiny)


def cluster_targets(q: Tensor, *, sharpened: bool = True, detach_frequency: bool = False) -> Tensor:
    """P of every view (..., B, K): ``P_ij = (q_ij^2 / f_j) / sum_k (q_ik^2 / f_k)`` over the
    batch (not detached, as the reference); ``sharpened=False`` returns Q itself."""
    if not sharpened:
        return q
    return sharpen_fixed_frequency(q) if detach_frequency else sharpen(q)


def column_contrast(p_a: Tensor, p_b: Tensor, temperature: float, similarity: str = "dot") -> Tensor:
    """Contrast of two views' cluster columns (P is B x K for each view).

    The 2K columns are vectors of length B; the positive of column j of one view is column j
    of the other; the other 2K - 2 columns are negatives, the anchor itself is left out and the
    positive stays in the denominator; mean cross-entropy over the 2K anchors. ``dot``: raw
    dot products / temperature (they grow with B / K); ``cosine``: cosine / temperature.
    """
    if similarity == "cosine":
        return cluster_contrastive_loss(p_a, p_b, temperature)
    # Rows of P^T are the columns of P, so the sample-level NT-Xent with dot products is
    # exactly the column contrast.
    return instance_contrastive_loss(p_a.T, p_b.T, temperature)


def negative_entropy_of_mean(p: Tensor) -> Tensor:
    """``sum_j pbar_j log pbar_j`` per view, pbar = column mean of P (..., B, K) -> (...,):
    the negative entropy, without a log K offset; pbar is floored at ``PROB_FLOOR``."""
    mean = p.float().mean(dim=-2).clamp_min(PROB_FLOOR)
    return (mean * mean.log()).sum(dim=-1)


def assignment_loss_parts(q: Tensor, *, lambda_contrast: float, beta_balance: float, temperature: float,
                          similarity: str, sharpened: bool, detach_frequency: bool) -> dict[str, Tensor]:
    """The weighted sums over view pairs v < w of one batch (q: (V, B, K) float32):
    ``contrast = lambda * sum l(P^v, P^w)`` and ``balance = beta * sum [b(P^v) + b(P^w)]``, where
    every view's b is counted V - 1 times. A part whose weight is 0 is neither computed nor
    present; so are both with a single view (no pairs)."""
    parts: dict[str, Tensor] = {}
    n_views = q.shape[0]
    if n_views < 2 or (lambda_contrast <= 0 and beta_balance <= 0):
        return parts
    p = cluster_targets(q.float(), sharpened=sharpened, detach_frequency=detach_frequency)
    if lambda_contrast > 0:
        pair_losses = [column_contrast(p[v], p[w], temperature, similarity)
                       for v, w in combinations(range(n_views), 2)]
        parts["contrast"] = lambda_contrast * torch.stack(pair_losses).sum()
    if beta_balance > 0:
        parts["balance"] = beta_balance * (n_views - 1) * negative_entropy_of_mean(p).sum()
    return parts


def reconstruction_loss(xs: Sequence[Tensor], x_hats: Sequence[Tensor]) -> Tensor:
    """``L_rec = sum_v mean((x^v - xhat^v)^2)`` in float32."""
    return torch.stack([F.mse_loss(x_hat.float(), x.float()) for x, x_hat in zip(xs, x_hats)]).sum()


def view_agreement(view_labels: Tensor) -> Tensor:
    """(V, V) fraction of samples on which the argmax of two views agrees (view_labels: (V, N))."""
    return (view_labels[:, None, :] == view_labels[None, :, :]).float().mean(dim=-1)
