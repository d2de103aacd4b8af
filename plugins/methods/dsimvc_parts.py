"""Parts of DSIMVC (Tang & Liu, ICML 2022): networks, losses, neighbour imputation, the batch
schedule and the bi-level (meta-weighting) step. ``dsimvc.py`` assembles them into the method.

Everything works on tensors on one device. The losses are computed in float32 even under bf16
autocast. Nothing here reads a row of a view that the mask marks missing, except as a zero
placeholder multiplied by zero.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mvbench.nn import autocast, balance_term, cluster_contrastive_loss, mlp

# Largest temporary of the neighbour search, in float entries (queries x candidates).
_SEARCH_BUDGET = 1 << 24


# ---------------------------------------------------------------------------------------------
# networks


class DsimvcNet(nn.Module):
    """Per-view encoders ``d_v -> hidden... -> feature_dim`` (ReLU between layers, linear latent),
    a shared feature head ``feature_dim -> feature_dim -> high_dim`` and a shared cluster head
    ``feature_dim -> feature_dim -> K`` with softmax.

    The main model of DSIMVC leaves the feature head's output unnormalised and has no decoders;
    the neighbour network L2-normalises it and has mirrored decoders for its MSE stage.
    """

    def __init__(self, dims: Sequence[int], n_clusters: int, *, hidden: Sequence[int], feature_dim: int,
                 high_dim: int, normalize_features: bool, with_decoders: bool) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(mlp([int(d), *hidden, feature_dim]) for d in dims)
        self.decoders = (nn.ModuleList(mlp([feature_dim, *reversed(hidden), int(d)]) for d in dims)
                         if with_decoders else None)
        self.feature_head = mlp([feature_dim, feature_dim, high_dim])
        self.cluster_head = mlp([feature_dim, feature_dim, n_clusters])
        self.normalize_features = normalize_features

    def features(self, z: Tensor) -> Tensor:
        h = self.feature_head(z)
        return F.normalize(h, dim=1) if self.normalize_features else h

    def assignments(self, z: Tensor) -> Tensor:
        return torch.softmax(self.cluster_head(z).float(), dim=1)

    def forward(self, xs: Sequence[Tensor], need_features: bool = True
                ) -> tuple[list[Tensor] | None, list[Tensor]]:
        """``(hs, qs)``, one (B, high_dim) and one (B, K) tensor per view; ``hs`` is None when
        ``need_features`` is False (the feature head is then not evaluated)."""
        zs = [encoder(x) for encoder, x in zip(self.encoders, xs)]
        hs = [self.features(z) for z in zs] if need_features else None
        return hs, [self.assignments(z) for z in zs]

    def reconstruct(self, xs: Sequence[Tensor]) -> list[Tensor]:
        if self.decoders is None:
            raise RuntimeError("this network was built without decoders")
        return [dec(enc(x)) for enc, dec, x in zip(self.encoders, self.decoders, xs)]


class WeightNet(nn.Module):
    """The meta weighting network ``K -> hidden -> 1`` with a sigmoid: one weight in (0, 1) per
    incomplete sample, from the mean over views of its soft assignments."""

    def __init__(self, n_clusters: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp([n_clusters, hidden, 1])

    def forward(self, mean_q: Tensor) -> Tensor:
        return torch.sigmoid(self.net(mean_q.float())).squeeze(1)


def reconstruction_loss(xs: Sequence[Tensor], x_hats: Sequence[Tensor]) -> Tensor:
    """``sum_v mean((x^v - xhat^v)^2)`` in float32."""
    return sum(F.mse_loss(x_hat.float(), x.float()) for x, x_hat in zip(xs, x_hats))


# ---------------------------------------------------------------------------------------------
# losses


def cap_row_norms(x: Tensor, radius: float) -> Tensor:
    """Rows whose L2 norm is at least ``radius`` are rescaled to norm ``radius``; the others
    are left as they are."""
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm < radius, x, F.normalize(x, dim=1) * radius)


def spectral_contrastive_terms(a: Tensor, b: Tensor, r: float = 3.0) -> Tensor:
    """Per-sample spectral contrastive loss between two views' features (B x f each):
    after capping row norms at sqrt(r),
    ``l_i = -(2/B) a_i.b_i + 1/(B(B-1)) sum_{j != i} (a_i.b_j)^2``; their sum is L_F."""
    a = cap_row_norms(a.float(), math.sqrt(r))
    b = cap_row_norms(b.float(), math.sqrt(r))
    n = a.shape[0]
    gram = a @ b.T
    positive = gram.diagonal()
    off_diagonal = (gram * gram).sum(dim=1) - positive * positive
    return -2.0 / n * positive + off_diagonal / (n * (n - 1))


@functools.lru_cache(maxsize=8)
def _same_view_logit_mask(n_clusters: int, device: str) -> tuple[Tensor, Tensor]:
    """For the 2K cluster columns ``[view a; view b]``: which columns enter the softmax of each
    anchor (its positive in the other view and the other K-1 columns of its own view) and the
    index of the positive. Built once per K and device."""
    k = n_clusters
    idx = torch.arange(2 * k, device=device)
    same_view = (idx[:, None] < k) == (idx[None, :] < k)
    positive = (idx + k) % (2 * k)
    allowed = (same_view & (idx[:, None] != idx[None, :])) | (idx[None, :] == positive[:, None])
    return allowed, positive


def same_view_cluster_contrast(q_a: Tensor, q_b: Tensor, temperature: float = 1.0) -> Tensor:
    """Cluster-level contrast whose negatives come from the anchor's own view only: the K
    columns of ``q_a`` and of ``q_b`` (B x K each), cosine similarity / ``temperature``; anchor
    column j of one view has its positive at column j of the other view and its K-1 negatives
    at the other columns of its own view. Cross-entropy averaged over the 2K anchors."""
    columns = F.normalize(torch.cat([q_a.float().T, q_b.float().T]), dim=1)
    allowed, positive = _same_view_logit_mask(q_a.shape[1], str(columns.device))
    logits = (columns @ columns.T / temperature).masked_fill(~allowed, float("-inf"))
    return F.cross_entropy(logits, positive)


@dataclass
class PairTerms:
    """The loss terms of one batch summed over the view pairs v < w; a term switched off is
    None. ``feature`` is per sample (B,): its sum is L_F."""

    feature: Tensor | None
    label: Tensor | None
    balance: Tensor | None

    def unweighted(self) -> Tensor:
        """L_C on a complete batch: ``sum_pairs [L_F + L_L]``."""
        return _sum_present(None if self.feature is None else self.feature.sum(), self.label, self.balance)

    def weighted(self, weights: Tensor, feature_scale: float) -> Tensor:
        """L_I(w) on an imputed batch: ``sum_pairs [sum_i w_i l_i / sum_i w_i + L_L]``, the
        feature part multiplied by ``feature_scale``. The weights cannot reach the label part:
        in the authors' code they cancel on that scalar."""
        feature = None
        if self.feature is not None:
            w = weights.float()
            feature = feature_scale * (w * self.feature).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
        return _sum_present(feature, self.label, self.balance)


def _sum_present(*terms: Tensor | None) -> Tensor:
    present = [t for t in terms if t is not None]
    if not present:
        raise ValueError("every loss term is switched off; keep at least one")
    return sum(present[1:], present[0])


@dataclass(frozen=True)
class DsimvcLosses:
    """The loss settings of one run; ``terms`` evaluates them on one batch."""

    feature_term: bool = True
    label_term: bool = True
    balance: bool = True
    same_view_negatives: bool = True
    label_temperature: float = 1.0
    spectral_r: float = 3.0
    feature_scale_by_batch: bool = False

    def terms(self, hs: Sequence[Tensor] | None, qs: Sequence[Tensor]) -> PairTerms:
        pairs = list(combinations(range(len(qs)), 2))
        feature = label = balance = None
        if self.feature_term:
            feature = sum(spectral_contrastive_terms(hs[v], hs[w], self.spectral_r) for v, w in pairs)
        if self.label_term:
            contrast = same_view_cluster_contrast if self.same_view_negatives else cluster_contrastive_loss
            label = sum(contrast(qs[v], qs[w], self.label_temperature) for v, w in pairs)
        if self.balance:
            # Each pair adds the term of both its views: V-1 times per view.
            balance = (len(qs) - 1) * sum(balance_term(q.float()) for q in qs)
        return PairTerms(feature, label, balance)

    def feature_scale(self, batch_size: int) -> float:
        """1 (the code: a weighted mean of l_i, about 1/B of L_F) or B (the size of L_F)."""
        return float(batch_size) if self.feature_scale_by_batch else 1.0


# ---------------------------------------------------------------------------------------------
# neighbour imputation


def _accepted_neighbours(valid: Tensor, already: Tensor, k: int) -> Tensor:
    """Which of each row's ranked candidates are accepted (rows = samples, columns = ranks).

    ``valid[i, j]``: candidate j observes the needed views; ``already[i]``: neighbours accepted
    for sample i in earlier views. The authors' walk appends valid candidates and stops once
    ``k`` are held in total, checking after every candidate: a row that still needs neighbours
    takes the first valid ones until it has ``k``; a row that already has ``k`` still looks at
    its first candidate and keeps it if valid.
    """
    need = (k - already).clamp_min(0)
    take = valid & (valid.cumsum(dim=1) <= need[:, None])
    take[:, 0] |= valid[:, 0] & (already >= k)
    return take


def neighbour_imputation(features: Sequence[Tensor], views: Sequence[Tensor], mask: Tensor, *, k: int,
                         topk: int) -> tuple[list[Tensor], Tensor]:
    """Fill each missing (sample, view) entry with the mean of its accepted neighbours' rows.

    For sample i missing view v, its observed views w != v are visited in index order. In
    view w the candidates are the other samples observing w, ranked by the inner product of
    ``features[w]`` (self excluded); of its first ``topk`` a candidate is valid when it also
    observes v. The first view gives up to ``k`` neighbours, each later view at most its
    nearest candidate (see :func:`_accepted_neighbours`). An entry with no accepted neighbour
    takes the mean of view v's observed rows.

    ``features[w]`` and ``views[v]`` are read on observed rows only. Returns copies of
    ``views`` with the missing rows filled, and the (N, V) number of accepted neighbours
    (0 on observed entries and on fallbacks).
    """
    n_views = mask.shape[1]
    filled = [x.clone() for x in views]
    counts = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)
    for v in range(n_views):
        targets = (~mask[:, v]).nonzero().squeeze(1)
        if targets.numel() == 0:
            continue
        total = torch.zeros(targets.numel(), views[v].shape[1], device=views[v].device)
        accepted = torch.zeros(targets.numel(), dtype=torch.long, device=mask.device)
        for w in range(n_views):
            if w != v:
                _walk_view(features[w], views[v], mask, v, w, targets, total, accepted, k, topk)
        observed_mean = views[v][mask[:, v]].float().mean(dim=0)
        imputed = total / accepted.clamp_min(1)[:, None]
        imputed = torch.where((accepted > 0)[:, None], imputed, observed_mean)
        filled[v][targets] = imputed.to(filled[v].dtype)
        counts[targets, v] = accepted
    return filled, counts


def _walk_view(features_w: Tensor, view_v: Tensor, mask: Tensor, v: int, w: int, targets: Tensor,
               total: Tensor, accepted: Tensor, k: int, topk: int) -> None:
    """One source view w of :func:`neighbour_imputation`: add the accepted neighbours' rows of
    view v to ``total`` and their number to ``accepted`` (both indexed like ``targets``)."""
    rows = mask[targets, w].nonzero().squeeze(1)  # targets that observe w
    pool = mask[:, w].nonzero().squeeze(1)  # candidates: samples observing w
    ranks = min(topk, pool.numel() - 1)
    if rows.numel() == 0 or ranks < 1:
        return
    pool_position = torch.full((mask.shape[0],), -1, dtype=torch.long, device=mask.device)
    pool_position[pool] = torch.arange(pool.numel(), device=mask.device)
    pool_features = features_w[pool].float()
    most = min(max(k, 1), ranks)  # no row accepts more than this many in one view
    chunk = max(1, _SEARCH_BUDGET // pool.numel())
    for part in rows.split(chunk):
        queries = targets[part]
        sim = features_w[queries].float() @ pool_features.T
        sim[torch.arange(part.numel(), device=sim.device), pool_position[queries]] = float("-inf")
        ranked = pool[sim.topk(ranks, dim=1).indices]  # (rows, ranks) sample ids, nearest first
        take = _accepted_neighbours(mask[ranked, v], accepted[part], k)
        # The accepted candidates first, in rank order (a stable sort of "not taken").
        order = torch.argsort((~take).to(torch.uint8), dim=1, stable=True)[:, :most]
        chosen, kept = ranked.gather(1, order), take.gather(1, order)
        rows_v = torch.where(kept[..., None], view_v[chosen].float(), torch.zeros((), device=view_v.device))
        total[part] += rows_v.sum(dim=1)
        accepted[part] += take.sum(dim=1)


# ---------------------------------------------------------------------------------------------
# batches and inference


def pooled_batches(pool: Tensor, n_batches: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """``n_batches`` batches of ``batch_size`` sample ids from ``pool``: consecutive slices of
    concatenated random permutations of the pool (the authors' sampler), so a pool smaller
    than a batch repeats samples within a batch. Returns (n_batches, batch_size)."""
    total = n_batches * batch_size
    n = pool.numel()
    repeats = total // n + 1
    # One draw: the argsort of uniform noise is a uniform permutation of each row.
    perms = torch.rand(repeats, n, generator=generator).argsort(dim=1)  # on the CPU, as all batch orders
    return pool[perms.reshape(-1)[:total].to(pool.device)].reshape(n_batches, batch_size)


@torch.no_grad()
def encode_rows(model: DsimvcNet, views: Sequence[Tensor], rows: Tensor, batch_size: int, precision: str,
                *, features: bool) -> list[Tensor]:
    """Per view, the feature head's output (``features=True``) or the soft assignments of the
    rows where ``rows[:, v]`` is True, in order; the other rows are zero."""
    out = []
    for v, (encoder, x) in enumerate(zip(model.encoders, views)):
        idx = rows[:, v].nonzero().squeeze(1)
        size = model.feature_head[-1].out_features if features else model.cluster_head[-1].out_features
        result = torch.zeros(x.shape[0], size, device=x.device)
        for part in idx.split(batch_size):
            with autocast(x.device, precision):
                z = encoder(x[part])
                result[part] = (model.features(z) if features else model.assignments(z)).float()
        out.append(result)
    return out


def mean_over_views(per_view: Sequence[Tensor], rows: Tensor) -> Tensor:
    """Each sample's mean of ``per_view[v]`` (N, D each) over the views where ``rows[:, v]`` is
    True: (N, D)."""
    weights = rows.float()
    stacked = torch.stack(list(per_view), dim=1)  # (N, V, D)
    return (stacked * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# training steps


@dataclass
class StepContext:
    """What the bi-level step needs besides the batch."""

    model: DsimvcNet
    model_optimizer: torch.optim.Optimizer
    losses: DsimvcLosses
    precision: str
    weight_net: WeightNet | None = None
    weight_optimizer: torch.optim.Optimizer | None = None
    meta_lr: float = 1e-3


def _forward_both(ctx: StepContext, complete: Sequence[Tensor], imputed: Sequence[Tensor] | None
                  ) -> tuple[PairTerms, PairTerms | None, Tensor | None]:
    """One forward of the complete and imputed batches stacked per view: the complete terms,
    the imputed terms and the imputed samples' mean assignment over views."""
    b = complete[0].shape[0]
    xs = list(complete) if imputed is None else [torch.cat([c, i]) for c, i in zip(complete, imputed)]
    with autocast(xs[0].device, ctx.precision):
        hs, qs = ctx.model(xs, need_features=ctx.losses.feature_term)
    head = lambda ts: None if ts is None else [t[:b] for t in ts]  # noqa: E731
    tail = lambda ts: None if ts is None else [t[b:] for t in ts]  # noqa: E731
    complete_terms = ctx.losses.terms(head(hs), head(qs))
    if imputed is None:
        return complete_terms, None, None
    mean_q = torch.stack(tail(qs)).float().mean(dim=0)
    return complete_terms, ctx.losses.terms(tail(hs), tail(qs)), mean_q


def optimiser_step(loss: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
    """Backward ``loss`` and step ``optimizer``; returns the detached loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def plain_step(ctx: StepContext, complete: Sequence[Tensor], imputed: Sequence[Tensor] | None) -> Tensor:
    """One model step without meta weighting: ``L_C`` (``imputed`` None: complete-only) or
    ``L_C + L_I(1)`` (every imputed sample weighted 1). Returns the detached loss."""
    complete_terms, imputed_terms, _ = _forward_both(ctx, complete, imputed)
    loss = complete_terms.unweighted()
    if imputed_terms is not None:
        b = imputed[0].shape[0]
        ones = torch.ones(b, device=loss.device)
        loss = loss + imputed_terms.weighted(ones, ctx.losses.feature_scale(b))
    return optimiser_step(loss, ctx.model_optimizer)


def bilevel_step(ctx: StepContext, complete: Sequence[Tensor], imputed: Sequence[Tensor]) -> Tensor:
    """One bi-level iteration of DSIMVC on a complete and an imputed batch.

    a. ``w = W(mean_v q~^v)`` (not detached) and one virtual SGD step
       ``theta' = theta - meta_lr * grad_theta [L_C + L_I(w)]`` with the graph kept
       (second order), evaluated by ``functional_call`` on the model's own parameters;
    b. one Adam step of the weight net on ``L_C(theta')`` of the same complete batch;
    c. ``w`` recomputed under no_grad with the updated weight net, then one Adam step of the
       model on ``L_C + L_I(w)``. The forward of (a) at theta is reused: the model has not
       moved since, so it is the forward the authors' code recomputes.

    Returns the detached (model loss, meta loss, mean w, min w, max w).
    """
    if ctx.weight_net is None or ctx.weight_optimizer is None:
        raise ValueError("bilevel_step needs the weight net and its optimizer in the context")
    complete_terms, imputed_terms, mean_q = _forward_both(ctx, complete, imputed)
    scale = ctx.losses.feature_scale(imputed[0].shape[0])
    complete_loss = complete_terms.unweighted()
    inner = complete_loss + imputed_terms.weighted(ctx.weight_net(mean_q), scale)

    names, params = zip(*ctx.model.named_parameters())
    grads = torch.autograd.grad(inner, params, create_graph=True, allow_unused=True)
    virtual = {name: p if g is None else p - ctx.meta_lr * g for name, p, g in zip(names, params, grads)}
    with autocast(complete[0].device, ctx.precision):
        hs, qs = functional_call(ctx.model, virtual, (list(complete),),
                                 {"need_features": ctx.losses.feature_term})
    meta_loss = ctx.losses.terms(hs, qs).unweighted()
    weight_params = list(ctx.weight_net.parameters())
    weight_grads = torch.autograd.grad(meta_loss, weight_params, allow_unused=True)
    for p, g in zip(weight_params, weight_grads):
        p.grad = torch.zeros_like(p) if g is None else g
    ctx.weight_optimizer.step()

    with torch.no_grad():
        weights = ctx.weight_net(mean_q.detach())
    loss = complete_loss + imputed_terms.weighted(weights, scale)
    optimiser_step(loss, ctx.model_optimizer)
    return torch.stack([loss.detach(), meta_loss.detach(), weights.mean(), weights.min(), weights.max()])
