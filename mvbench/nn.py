"""Building blocks shared by the deep multi-view clustering methods.

Everything here is plain torch and works on any device. Method authors can compose:

- :class:`ViewAutoencoder` / :class:`MultiViewAutoencoder`: per-view MLP autoencoders;
- :func:`instance_contrastive_loss`, :func:`cluster_contrastive_loss`, :func:`balance_term`,
  :func:`entropy_of_mean`: the contrastive and balance losses shared by the methods (docs/methods/)
  (computed in float32 even under bf16 autocast, since softmax over temperature-scaled
  similarities is where low precision hurts);
- :func:`kmeans`: seeded, batched k-means++ / Lloyd on tensors;
- :func:`hungarian_match`: relabel one labelling to agree with another;
- :func:`minibatches`, :func:`torch_generator`, :func:`autocast`, :func:`minmax_scale`,
  :func:`adam`: the training-loop plumbing (seeded index batches, mixed precision, scaling,
  a fast Adam).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from mvbench.device import check_precision
from mvbench.errors import MvbenchError

__all__ = [
    "ACTIVATIONS",
    "MultiViewAutoencoder",
    "adam",
    "ViewAutoencoder",
    "autocast",
    "balance_term",
    "cluster_contrastive_loss",
    "entropy_of_mean",
    "hungarian_match",
    "instance_contrastive_loss",
    "kmeans",
    "minibatches",
    "minmax_scale",
    "mlp",
    "torch_generator",
]

SIMILARITIES = ("cosine", "dot")

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
}



def _activation(name: str | None) -> list[nn.Module]:
    if name is None:
        return []
    if name not in ACTIVATIONS:
        raise MvbenchError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return [ACTIVATIONS[name]()]


def mlp(
    sizes: Sequence[int], *, activation: str = "relu", final_activation: str | None = None
) -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation`` between
    them and ``final_activation`` (None = none) after the last one."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        layers.extend(_activation(final_activation if last else activation))
    return nn.Sequential(*layers)


class ViewAutoencoder(nn.Module):
    """MLP autoencoder of one view.

    Encoder ``in_dim -> hidden[0] -> ... -> hidden[-1] -> latent_dim``, ``activation`` between
    layers and ``latent_activation`` (None = linear latent) after the last; the decoder mirrors
    it (``latent_dim -> hidden[-1] -> ... -> in_dim``) with ``output_activation`` at the end.
    MFLVC/RAV: all defaults. DIMVC-HIA: ``latent_activation="relu", output_activation="relu"``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        latent_dim: int,
        *,
        activation: str = "relu",
        latent_activation: str | None = None,
        output_activation: str | None = None,
    ) -> None:
        super().__init__()
        sizes = [int(in_dim), *map(int, hidden), int(latent_dim)]
        self.encoder = mlp(sizes, activation=activation, final_activation=latent_activation)
        self.decoder = mlp(sizes[::-1], activation=activation, final_activation=output_activation)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, x_hat)``."""
        z = self.encoder(x)
        return z, self.decoder(z)


class MultiViewAutoencoder(nn.Module):
    """One :class:`ViewAutoencoder` per view (``dims[v]`` input features each); keyword
    arguments are passed to every view's autoencoder."""

    def __init__(self, dims: Sequence[int], hidden: Sequence[int], latent_dim: int, **kw: Any) -> None:
        super().__init__()
        self.views = nn.ModuleList(ViewAutoencoder(d, hidden, latent_dim, **kw) for d in dims)

    def encode(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return [ae.encode(x) for ae, x in zip(self.views, xs)]

    def decode(self, zs: Sequence[Tensor]) -> list[Tensor]:
        return [ae.decode(z) for ae, z in zip(self.views, zs)]

    def forward(self, xs: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Return ``(zs, x_hats)``, one tensor per view."""
        zs = self.encode(xs)
        return zs, self.decode(zs)


_F = TypeVar("_F", bound=Callable[..., Tensor])


def _float32(fn: _F) -> _F:
    """Run a loss with autocast off and its tensor arguments in float32."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        args = tuple(a.float() if isinstance(a, Tensor) else a for a in args)
        kwargs = {k: v.float() if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        with torch.autocast(tensors[0].device.type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _nt_xent(sim: Tensor, n_anchor_rows: int | None = None) -> Tensor:
    """NT-Xent on a (2M, 2M) similarity matrix whose row i has its positive at column
    (i + M) mod 2M; self-similarity is excluded from the denominator, the positive stays in it.
    Averaged over the first ``n_anchor_rows`` rows (default: all 2M)."""
    two_m = sim.shape[0]
    rows = two_m if n_anchor_rows is None else n_anchor_rows
    idx = torch.arange(rows, device=sim.device)
    is_self = idx[:, None] == torch.arange(two_m, device=sim.device)
    logits = sim[:rows].masked_fill(is_self, float("-inf"))
    return F.cross_entropy(logits, (idx + two_m // 2) % two_m)


@_float32
def instance_contrastive_loss(h_a: Tensor, h_b: Tensor, temperature: float) -> Tensor:
    """Instance-level NT-Xent between two views (B x f each, rows = the same B samples).

    Over the 2B rows of ``[h_a; h_b]``: similarity = dot product / ``temperature`` (L2-normalise
    the rows first for cosine), the positive of row i is the same sample in the other view,
    the row itself is excluded from the denominator (the positive is kept), and the
    cross-entropy is averaged over all 2B anchors.
    """
    h = torch.cat([h_a, h_b], dim=0)
    return _nt_xent(h @ h.T / temperature)


@_float32
def cluster_contrastive_loss(
    q_a: Tensor, q_b: Tensor, temperature: float, *, directional: bool = False,
    similarity: str = "cosine",
) -> Tensor:
    """Cluster-level NT-Xent between two views' soft assignments (B x K each).

    The K columns of ``q_a`` and of ``q_b`` form 2K vectors of length B; similarity = cosine
    (or the plain dot product with ``similarity="dot"``, whose logits grow with B / K) /
    ``temperature``; the positive of column j of one view is column j of the other; the
    denominator of an anchor runs over the other 2K-1 columns (positive included, self
    excluded). ``directional=False`` averages the cross-entropy over all 2K anchors;
    ``directional=True`` averages it over the K anchors of view a only (the denominators are
    unchanged), so the symmetric loss equals the mean of ``(a, b)`` and ``(b, a)`` directional
    losses.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; choose one of {SIMILARITIES}")
    c = torch.cat([q_a.T, q_b.T], dim=0)
    if similarity == "cosine":
        c = F.normalize(c, dim=1)
    k = q_a.shape[1]
    return _nt_xent(c @ c.T / temperature, k if directional else None)


@_float32
def entropy_of_mean(q: Tensor) -> Tensor:
    """``H(p)`` with ``p = mean_i q_i`` (natural log); ``q`` is (B x K) with rows on the simplex."""
    p = q.mean(dim=0)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum()


def balance_term(q: Tensor) -> Tensor:
    """``log K - H(mean_i q_i)``: >= 0, zero when clusters are used equally on average."""
    return math.log(q.shape[1]) - entropy_of_mean(q)


_Labels = TypeVar("_Labels", Tensor, np.ndarray)


def hungarian_match(source: _Labels, target: _Labels, n_clusters: int) -> _Labels:
    """Relabel ``source`` (int labels) with the one-to-one mapping that maximises the
    number of samples on which it agrees with ``target``. Returns the same type (and device
    for tensors) as ``source``. Labels must lie in ``0..n_clusters-1`` (larger ones widen the
    count matrix)."""
    as_tensor = isinstance(source, Tensor)
    s = source.detach().cpu().numpy() if as_tensor else np.asarray(source)
    t = target.detach().cpu().numpy() if isinstance(target, Tensor) else np.asarray(target)
    s = s.astype(np.int64, copy=False)
    t = t.astype(np.int64, copy=False)
    size = max(int(n_clusters), int(s.max(initial=-1)) + 1, int(t.max(initial=-1)) + 1)
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (s, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = np.empty(size, dtype=np.int64)
    mapping[rows] = cols
    out = mapping[s]
    if as_tensor:
        return torch.from_numpy(out).to(device=source.device, dtype=source.dtype)
    return out.astype(np.asarray(source).dtype, copy=False)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``.

    The one policy for batch order and k-means seeding: numbers are drawn on the CPU and the
    result is moved to the device, so a seed draws the same batches and the same k-means++
    candidates on every device (a CUDA generator would draw other numbers than the CPU one).
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def minibatches(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    *,
    device: torch.device | str,
    drop_last: bool = True,
) -> Iterator[Tensor]:
    """Index batches of one epoch: consecutive slices of a permutation of ``range(n)`` drawn
    from ``generator`` (one draw per call, a CPU generator: see :func:`torch_generator`), moved
    to ``device``.

    With ``drop_last`` the final partial batch is skipped, as the reference loaders do. When
    ``n < batch_size`` the single batch is the whole shuffled data set (never empty), so small
    data sets (a few hundred samples) still train with the default batch size.
    """
    if generator.device.type != "cpu":
        raise ValueError("minibatches draws the batch order on the CPU, so that it is the same on "
                         "every device; pass torch_generator(seed)")
    perm = torch.randperm(n, generator=generator).to(device)
    if n <= batch_size:
        yield perm
        return
    stop = n - n % batch_size if drop_last else n
    yield from perm[:stop].split(batch_size)


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision context: ``"bf16"`` = ``torch.autocast`` to bfloat16 on ``device``
    (CPU or CUDA), ``"fp32"`` = no-op; any other value (see ``mvbench.device.PRECISIONS``)
    is an MvbenchError. On CPUs without native bf16 instructions (AVX512-BF16 or AMX) the bf16
    matrix multiplies are emulated: measured 14x slower than fp32 on an AVX2-only Zen 3."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def adam(params: Iterable[nn.Parameter], *, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel on CPU and CUDA parameters. Same update rule;
    on CPU the default per-tensor loop costs about as much as a batch's backward pass for
    these wide MLPs, the fused step a fraction of it."""
    params = list(params)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def minmax_scale(x: Tensor) -> Tensor:
    """Scale each column to [0, 1]; constant columns become 0 (as sklearn's MinMaxScaler)."""
    low = x.amin(dim=0)
    span = x.amax(dim=0) - low
    return (x - low) / torch.where(span > 0, span, torch.ones_like(span))


# ---------------------------------------------------------------------------------------------
# k-means

_KMEANS_BUDGET = 1 << 24  # float entries of the largest temporary (runs x samples x K)


def _sq_dist(x: Tensor, x_sq: Tensor, c: Tensor) -> Tensor:
    """Squared distances between rows of x (N, d) and c (R, M, d): (R, M, N)."""
    c_sq = (c * c).sum(-1, keepdim=True)
    return (c_sq - 2.0 * (c @ x.T) + x_sq).clamp_min_(0.0)


def _kmeans_plus_plus(x: Tensor, x_sq: Tensor, k: int, runs: int, g: torch.Generator) -> Tensor:
    """Greedy k-means++ seeding (2 + log k candidates per step, as scikit-learn) for ``runs``
    independent runs at once: (runs, k, d) centers."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    rows = torch.arange(runs, device=x.device)
    first = torch.randint(n, (runs,), generator=g).to(x.device)
    centers = [x[first]]
    closest = _sq_dist(x, x_sq, x[first][:, None])[:, 0]  # (runs, n)
    for _ in range(1, k):
        # Sampled on the CPU in float64 whatever the device: CUDA's floating-point cumsum is
        # nondeterministic, and the CPU draws are the same on every device.
        cum = closest.to("cpu", torch.float64).cumsum(dim=1)
        draw = torch.rand(runs, trials, generator=g, dtype=torch.float64)
        cand = torch.searchsorted(cum, draw * cum[:, -1:]).clamp_(max=n - 1).to(x.device)
        dist = torch.minimum(_sq_dist(x, x_sq, x[cand]), closest[:, None])  # (runs, trials, n)
        best = dist.sum(dim=2).argmin(dim=1)
        closest = dist[rows, best]
        centers.append(x[cand[rows, best]])
    return torch.stack(centers, dim=1)


def _lloyd(x: Tensor, x_sq: Tensor, centers: Tensor, max_iter: int, tol: float) -> Tensor:
    """Batched Lloyd iterations until every run's squared center shift is <= tol (runs that
    converged stop changing); empty clusters move to the points farthest from their center."""
    runs, k, _ = centers.shape
    active = torch.arange(runs, device=x.device)
    for _ in range(max_iter):
        c = centers[active]
        dist = _sq_dist(x, x_sq, c)  # (r, k, n)
        min_dist, labels = dist.min(dim=1)
        onehot = F.one_hot(labels, k).to(x.dtype)  # (r, n, k)
        counts = onehot.sum(dim=1)  # (r, k)
        new = (onehot.transpose(1, 2) @ x) / counts.clamp_min(1.0)[..., None]
        empty = counts == 0
        if bool(empty.any()):
            far = min_dist.topk(k, dim=1).indices  # farthest points first, per run
            rank = (empty.cumsum(dim=1) - 1).clamp_min(0)
            new = torch.where(empty[..., None], x[far.gather(1, rank)], new)
        shift = ((new - c) ** 2).sum(dim=(1, 2))
        centers[active] = new
        active = active[shift > tol]
        if active.numel() == 0:
            break
    return centers


def kmeans(
    x: Tensor,
    n_clusters: int,
    *,
    n_init: int = 10,
    max_iter: int = 300,
    tol: float = 1e-4,
    seed: int,
) -> tuple[Tensor, Tensor]:
    """k-means on the rows of ``x`` (N, d): returns ``(labels (N,) int64, centers (K, d))``.

    ``n_init`` runs of greedy k-means++ seeding + Lloyd iterations, drawn from one CPU
    ``torch.Generator`` seeded with ``seed`` (the sampling step runs on the CPU, so it is
    deterministic and draws the same numbers on every device); the run
    with the lowest inertia wins (ties: the first). ``tol`` is relative to the mean feature
    variance, as in scikit-learn. Runs are batched, chunked to bound memory. Computed in float32.
    """
    if n_clusters < 1 or n_init < 1:
        raise MvbenchError(f"kmeans needs n_clusters >= 1 and n_init >= 1, got {n_clusters}, {n_init}")
    x = x.detach().float()
    n = x.shape[0]
    if n < n_clusters:
        raise MvbenchError(f"kmeans: {n} samples cannot form {n_clusters} clusters; lower n_clusters")
    g = torch_generator(seed)
    x_sq = (x * x).sum(dim=1)
    abs_tol = float(x.var(dim=0, unbiased=False).mean()) * tol
    trials = 2 + int(math.log(n_clusters))
    chunk = max(1, _KMEANS_BUDGET // (n * max(n_clusters, trials)))
    best_inertia, best_centers = math.inf, None
    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        for start in range(0, n_init, chunk):
            runs = min(chunk, n_init - start)
            centers = _kmeans_plus_plus(x, x_sq, n_clusters, runs, g)
            centers = _lloyd(x, x_sq, centers, max_iter, abs_tol)
            inertia = _sq_dist(x, x_sq, centers).min(dim=1).values.double().sum(dim=1)
            i = int(inertia.argmin())
            if float(inertia[i]) < best_inertia:
                best_inertia, best_centers = float(inertia[i]), centers[i]
        labels = _sq_dist(x, x_sq, best_centers[None])[0].argmin(dim=0)
    return labels, best_centers
