"""Parts of GCFAggMVC: the GCFAgg transformer layer, the network, the structure-guided
contrastive loss and label-free diagnostics of the structure matrix S.

The layer is written out rather than taken from ``nn.TransformerEncoderLayer`` because the
authors' code runs a patched torch (their "Obtain -S.docx"): the attention block reads
``LN1(Z)`` instead of ``Z`` and the layer also returns the attention weights S (after their
dropout). The stock post-norm reading is ``attn_input="raw"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mvbench.nn import MultiViewAutoencoder

ATTN_INPUTS = ("ln", "raw")
BLOCKS = ("transformer", "attention")
AGGREGATIONS = ("gcfagg", "concat")
SG_WEIGHTS = ("logit", "exp", "none")


class Aggregated(NamedTuple):
    """Output of the GCFAgg layer on one batch of B samples."""

    z_hat: Tensor  # (B, E) aggregated features
    s: Tensor  # (B, B) attention weights after dropout: the S of the loss (as the reference returns)
    attention: Tensor  # (B, B) attention weights before dropout: rows on the simplex (diagnostics)


class GCFAggLayer(nn.Module):
    """One single-head transformer encoder layer whose tokens are the B samples of a batch.

    ``block="transformer"`` (the authors' code with the docx patch)::

        U = LN1(Z)                      (attn_input="ln"; "raw": U = Z, stock post-norm)
        Q, K, R = U W_q + b_q, U W_k + b_k, U W_r + b_r
        A = softmax_rows(Q K^T / sqrt(E)),   S = Drop(A)
        Y = LN1(Z + Drop((S R) W_o + b_o))
        Z_hat = LN2(Y + Drop(W_2 Drop(ReLU(W_1 Y + b_1)) + b_2))

    ``block="attention"`` (the paper's drawing, unconfirmed): ``Z_hat = S R``; the output
    projection, the feed-forward block and LN2 are not built. Initialisation as torch's layer:
    Q/K/R projection xavier-uniform with zero bias, output projection bias zero, the rest
    torch's Linear/LayerNorm defaults.
    """

    def __init__(self, dim: int, *, ffn_dim: int = 256, dropout: float = 0.1, attn_input: str = "ln",
                 block: str = "transformer", eps: float = 1e-5) -> None:
        super().__init__()
        if attn_input not in ATTN_INPUTS or block not in BLOCKS:
            raise ValueError(f"attn_input must be one of {ATTN_INPUTS} and block one of {BLOCKS}")
        self.dim, self.attn_input, self.block = dim, attn_input, block
        self.qkr = nn.Linear(dim, 3 * dim)
        nn.init.xavier_uniform_(self.qkr.weight)
        nn.init.zeros_(self.qkr.bias)
        self.attn_dropout = nn.Dropout(dropout)
        # LN1 serves twice in the patched layer (attention input and first residual); with the
        # plain attention block it is needed only for the attention input.
        needs_norm1 = block == "transformer" or attn_input == "ln"
        self.norm1 = nn.LayerNorm(dim, eps=eps) if needs_norm1 else None
        if block == "transformer":
            self.out_proj = nn.Linear(dim, dim)
            nn.init.zeros_(self.out_proj.bias)
            self.linear1 = nn.Linear(dim, ffn_dim)
            self.linear2 = nn.Linear(ffn_dim, dim)
            self.norm2 = nn.LayerNorm(dim, eps=eps)
            self.dropout1 = nn.Dropout(dropout)
            self.ffn_dropout = nn.Dropout(dropout)
            self.dropout2 = nn.Dropout(dropout)

    def forward(self, z: Tensor) -> Aggregated:
        u = self.norm1(z) if self.attn_input == "ln" else z
        q, k, r = self.qkr(u).chunk(3, dim=1)
        # torch scales Q before the product; the same here so that rounding matches the layer.
        attention = torch.softmax((q / math.sqrt(self.dim)) @ k.T, dim=1)
        s = self.attn_dropout(attention)
        mixed = s @ r
        if self.block == "attention":
            return Aggregated(mixed, s, attention)
        y = self.norm1(z + self.dropout1(self.out_proj(mixed)))
        ffn = self.linear2(self.ffn_dropout(torch.relu(self.linear1(y))))
        return Aggregated(self.norm2(y + self.dropout2(ffn)), s, attention)


class GCFAggNet(nn.Module):
    """Per-view autoencoders, the view head (one Linear shared by all views, rows
    L2-normalised: H^v) and the common path: GCFAgg (or plain concatenation) of
    ``Z = [Z^1 .. Z^V]`` followed by the common head (Linear E -> high_dim, rows L2-normalised:
    H_hat). Modules are created in the reference's order (autoencoders, view head, common
    head, transformer layer); with ``aggregation="concat"`` no layer is built at all."""

    def __init__(self, dims: Sequence[int], *, hidden: Sequence[int], feature_dim: int, high_dim: int,
                 aggregation: str = "gcfagg", block: str = "transformer", attn_input: str = "ln",
                 ffn_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        self.autoencoders = MultiViewAutoencoder(dims, hidden, feature_dim)
        self.view_head = nn.Linear(feature_dim, high_dim)
        joint_dim = feature_dim * len(dims)
        self.common_head = nn.Linear(joint_dim, high_dim)
        self.gcfagg = (GCFAggLayer(joint_dim, ffn_dim=ffn_dim, dropout=dropout, attn_input=attn_input,
                                   block=block)
                       if aggregation == "gcfagg" else None)

    def view_features(self, zs: Sequence[Tensor]) -> list[Tensor]:
        """H^v for every view."""
        return [F.normalize(self.view_head(z), dim=1) for z in zs]

    def common_features(self, zs: Sequence[Tensor]) -> tuple[Tensor, Aggregated | None]:
        """H_hat of the batch and the layer's output (None for ``aggregation="concat"``)."""
        joint = torch.cat(list(zs), dim=1)
        if self.gcfagg is None:
            return F.normalize(self.common_head(joint), dim=1), None
        aggregated = self.gcfagg(joint)
        return F.normalize(self.common_head(aggregated.z_hat), dim=1), aggregated


@dataclass(frozen=True)
class ContrastMasks:
    """Index structure of a 2B x 2B contrast over the rows of ``[H^v; H_hat]``, built once per
    batch size: ``is_self`` marks the diagonal, ``is_negative`` every pair that is neither self
    nor the positive, ``positive[a]`` = (a + B) mod 2B."""

    is_self: Tensor
    is_negative: Tensor
    positive: Tensor

    @classmethod
    def build(cls, batch_size: int, device: torch.device | str = "cpu") -> ContrastMasks:
        rows = torch.arange(2 * batch_size, device=device)
        positive = (rows + batch_size) % (2 * batch_size)
        is_self = rows[:, None] == rows[None, :]
        is_positive = positive[:, None] == rows[None, :]
        return cls(is_self=is_self, is_negative=~(is_self | is_positive), positive=positive)


def structure_guided_contrastive_loss(h_view: Tensor, h_common: Tensor, s: Tensor | None, tau: float, *,
                                      weighting: str = "logit", masks: ContrastMasks | None = None) -> Tensor:
    """SgCL of one view against the consensus, in float32 (autocast off).

    Rows of ``[H^v; H_hat]`` (2B), ``sim = dot / tau``; weights ``W = 1 - [[S, S], [S, S]]``.
    Anchor a: positive ``sim[a, a +- B]`` unweighted; its 2B-2 negatives enter as
    ``W[a, b] * sim[a, b]`` (``weighting="logit"``, the reference), as ``sim[a, b] + log W[a, b]``
    (``"exp"``: W multiplies exp(sim); W <= 0, possible only where a post-dropout S entry exceeds
    1, drops that negative) or unweighted (``"none"``, or ``s=None``: plain NT-Xent). The
    cross-entropy is averaged over the 2B anchors.
    """
    if weighting not in SG_WEIGHTS:
        raise ValueError(f"weighting must be one of {SG_WEIGHTS}, got {weighting!r}")
    batch = h_view.shape[0]
    if masks is None:
        masks = ContrastMasks.build(batch, h_view.device)
    with torch.autocast(h_view.device.type, enabled=False):
        h = torch.cat([h_view.float(), h_common.float()], dim=0)
        sim = h @ h.T / tau
        if s is not None and weighting != "none":
            w = 1.0 - s.float().repeat(2, 2)
            if weighting == "logit":
                weighted = sim * w
            else:
                weighted = sim + torch.log(w.clamp_min(torch.finfo(w.dtype).tiny))
            sim = torch.where(masks.is_negative, weighted, sim)
        logits = sim.masked_fill(masks.is_self, float("-inf"))
        return F.cross_entropy(logits, masks.positive)


def reconstruction_loss(xs: Sequence[Tensor], x_hats: Sequence[Tensor]) -> Tensor:
    """``sum_v mean((x^v - xhat^v)^2)``, in float32."""
    return sum(F.mse_loss(x_hat.float(), x.float()) for x, x_hat in zip(xs, x_hats))


def attention_statistics(attention: Tensor) -> Tensor:
    """``[mean row entropy, mean row max]`` of a row-stochastic (B, B) matrix, no gradient.
    Uniform rows give ``log B`` and ``1/B``; one-hot rows give 0 and 1."""
    a = attention.detach().float()
    entropy = -(a * torch.log(a.clamp_min(torch.finfo(a.dtype).tiny))).sum(dim=1)
    return torch.stack([entropy.mean(), a.amax(dim=1).mean()])
