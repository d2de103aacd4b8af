"""ProImp (IJCAI 2023, Li et al.): incomplete multi-view clustering via prototype-based imputation.

Two views. Each view has an encoder, K learnable prototypes and a one-head attention between the
batch's samples and its prototypes (the "dual attention": samples summarise prototypes, prototypes
summarise samples). Training uses only the samples observed in both views:
``L_ins`` (sample-level contrast of the two views' representations) plus ``L_reg`` (every
prototype used on average, each sample attending to few) from the first epoch, and from epoch
``pretrain_epochs`` on ``L_pro``, a contrast between the two views' prototype representations
after matching view-1 prototypes to view-2 prototypes (Hungarian on the co-occurrence of the
samples' most attended prototypes), whose positive logit peaks at cosine 0.75 rather than 1.
Readout: each observed view gives its representation; a missing view is imputed from the
observed view's attention, reordered through the matching, mixing the missing view's prototype
values. The two 256-d parts are concatenated and clustered by k-means (K, 10 restarts).
Missing views are handled natively: a missing row is never read.

Defaults follow the authors' code (github.com/XLearning-SCU/2023-IJCAI-ProImp; the paper body was
not available to check): encoder ``d -> 1024 -> 1024 -> 1024 -> 256`` (CUB: 512 first, view 1
sigmoid), one Adam at lr 1e-3, batch 1024 with the last partial batch kept, 150 epochs of which
the first 50 without ``L_pro``, the matching computed once at epoch 50, the final epoch read out,
views z-scored with one scalar mean and std each. Departures, each an option or named here:
everything is seeded from the trial; the z-score statistics come from the observed rows
(``norm_stats=masked_all`` = the code's statistics over the zero-filled matrix); a last batch of a
single sample is merged into the previous one (the code's BatchNorm would fail on it); k-means is
ours (seeded, 10 restarts) rather than scikit-learn's.

On a dataset with more than two views a mask may leave a sample with neither of ProImp's two
views, which the authors' code (two views, their own masks) never meets. By default the run is
refused; ``uncovered=mean_fill`` reads such a sample out with its first view set to the mean
observed row (the rule the runner applies to methods without missing-view handling), so its
second view is imputed as usual; it is never trained on, and the record counts these samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.errors import MvbenchError
from mvbench.hookspecs import method_hook
from mvbench.nn import autocast, kmeans, minibatches, torch_generator
from mvbench.options import (Option, batch_size, choice, epochs, hidden_widths, kmeans_restarts,
                             learning_rate, options_class)
from mvbench.specs import MethodInput, MethodOutput, MethodSpec, Variant
from mvbench.training import Step, Trainer
from mvbench_plugins.methods.proimp_parts import (
    ENCODER_ACTIVATIONS,
    ProImpNet,
    attention_regulariser,
    check_views,
    imputed_representation,
    instance_loss,
    match_prototypes,
    observed_representation,
    prototype_counts,
    prototype_loss,
)

OPTIONS = (
    Option("views", "list[int]", (0, 1), "the two dataset views used (0-based); ProImp is a two-view method"),
    hidden_widths((1024, 1024, 1024), "encoder hidden widths (Linear-BN-activation each)"),
    Option("activations", "list[str]", ("relu", "relu"),
           "encoder activation of each of the two views (one value = both)", choices=tuple(ENCODER_ACTIVATIONS)),
    Option("dim", "int", 256, "latent size D of z, s, h and the prototypes", minimum=1),
    Option("dropout", "float", 0.2, "dropout after every encoder hidden layer but the last", minimum=0.0,
           maximum=0.99),
    batch_size(1024, "mini-batch of complete pairs; the last partial batch is kept", minimum=2),
    learning_rate(1e-3, "Adam learning rate (one optimiser, weight decay 0)"),
    epochs("epochs", 150, "training epochs in all (the first pretrain_epochs without L_pro)"),
    epochs("pretrain_epochs", 50, "epochs before the prototype matching and L_pro"),
    Option("tau_ins", "float", 0.5, "temperature of the instance contrast L_ins", minimum=1e-6),
    Option("tau_pro", "float", 2.0, "temperature of the prototype contrast L_pro", minimum=1e-6),
    Option("use_pro", "bool", True, "prototype contrast L_pro from epoch pretrain_epochs on", ablation=True),
    Option("use_reg", "bool", True, "attention regulariser L_reg (balance + sharpness)", ablation=True),
    Option("reg_balance", "float", 1.0, "weight of 1/2 sum_v (log K - H(mean attention))", minimum=0.0,
           ablation=True),
    Option("reg_sharp", "float", 0.01, "weight of sum_v mean row entropy of the attention", minimum=0.0,
           ablation=True),
    Option("pro_peak", "float", 0.75, "cosine at which L_pro's positive logit peaks (1 = plain positive)",
           minimum=0.0, maximum=1.0, ablation=True),
    choice("impute", ("prototype", "cross_copy", "zero"),
           "missing view's representation: prototype (attention over the missing view's prototypes), "
           "cross_copy (the observed view's representation) or zero (no imputation: the code's "
           "zero-filled buffer)", ablation=True),
    Option("impute_residual", "bool", True, "prototype imputation adds the observed view's n(s)",
           ablation=True),
    choice("match_update", ("once", "every_epoch"),
           "prototype matching computed once at epoch pretrain_epochs (code) or before every later "
           "epoch and the readout"),
    choice("norm_stats", ("observed", "masked_all"),
           "scalar z-score of each view from its observed rows, or masked_all = over the whole "
           "zero-filled N x d matrix (the code)"),
    kmeans_restarts(10, "k-means restarts on the concatenated representations"),
    choice("uncovered", ("refuse", "mean_fill"),
           "a sample with neither of the two views observed (possible when a mask covers more views): "
           "refuse the run, or mean_fill = read it out with its first view set to that view's mean "
           "observed row (the runner's mean fill; never trained on), so ProImp imputes the second"),
)

# configure.py of the authors: Scene-15 is the default architecture; CUB narrows the first layer
# and gives view 1 a sigmoid.
PRESETS: dict[str, dict[str, Any]] = {
    "scene15": {"hidden": (1024, 1024, 1024), "activations": ("relu", "relu")},
    "cub": {"hidden": (512, 1024, 1024), "activations": ("sigmoid", "relu")},
}

VARIANTS = {
    "proimp-nopro": Variant({"use_pro": False}, "without the prototype contrast L_pro"),
    "proimp-noreg": Variant({"use_reg": False}, "without the attention regulariser L_reg"),
    "proimp-nopeak": Variant({"pro_peak": 1.0}, "L_pro with the plain positive (no 0.75 peak)"),
    "proimp-crosscopy": Variant({"impute": "cross_copy"},
                                "missing view = copy of the observed view's representation"),
    "proimp-noimpute": Variant({"impute": "zero"}, "no imputation: a missing view's part stays zero"),
    "proimp-noresidual": Variant({"impute_residual": False}, "prototype imputation without the residual n(s)"),
    "proimp-codenorm": Variant({"norm_stats": "masked_all"},
                               "the authors' z-score statistics over the zero-filled matrix"),
}


Config = options_class("Config", OPTIONS, owner="method 'proimp'")


def view_activations(activations: tuple[str, ...]) -> tuple[str, str]:
    """The two views' encoder activations: one value serves both."""
    if len(activations) == 1:
        return activations * 2
    if len(activations) != 2:
        raise MvbenchError(f"proimp: activations needs 1 or 2 values, got {list(activations)}")
    return activations


# --- data ------------------------------------------------------------------------------------

def zscore_statistics(x: Tensor, observed: Tensor, scope: str) -> tuple[float, float]:
    """One scalar mean and (unbiased) std of a view, over its observed entries (``observed``)
    or over the whole N x d matrix with the missing rows counted as zeros (``masked_all``).
    Only observed rows are read."""
    rows = x[observed].double()
    count = rows.numel() if scope == "observed" else x.numel()
    mean = rows.sum() / count
    var = ((rows - mean) ** 2).sum()
    if scope == "masked_all":
        var = var + (x.numel() - rows.numel()) * mean**2  # the zero entries' squared deviations
    std = float((var / max(count - 1, 1)).sqrt())
    return float(mean), std if std > 0 else 1.0


def prepared_views(views: Sequence[Tensor], mask: Tensor, scope: str) -> tuple[list[Tensor], list[list[float]]]:
    """Each view z-scored with its scalar statistics; missing rows (NaN on input) become 0 and are
    never encoded. Returns the views and their [mean, std]."""
    out, stats = [], []
    for v, x in enumerate(views):
        x = x.to(mask.device).float()
        observed = mask[:, v]
        mean, std = zscore_statistics(x, observed, scope)
        scaled = torch.zeros_like(x)
        scaled[observed] = (x[observed] - mean) / std
        out.append(scaled)
        stats.append([mean, std])
    return out, stats


def _check_mask(mask: Tensor, views: tuple[int, int], uncovered: str) -> None:
    if mask.dtype != torch.bool or mask.ndim != 2:
        raise MvbenchError(f"proimp: mask must be a bool (N, V) tensor, got {tuple(mask.shape)} {mask.dtype}")
    neither = int((~mask.any(dim=1)).sum())
    if neither and uncovered == "refuse":
        raise MvbenchError(f"proimp: {neither} samples have neither of views {list(views)} observed; "
                           f"ProImp needs one of its two views per sample (set uncovered=mean_fill to read "
                           f"them out as view {views[0]}'s mean row, or choose views=...)")
    if int(mask.all(dim=1).sum()) < 2:
        raise MvbenchError(f"proimp: fewer than 2 samples have both views {list(views)} observed; "
                           f"it trains on complete pairs only")


def mean_filled(xs: list[Tensor], mask: Tensor) -> tuple[list[Tensor], Tensor]:
    """The readout's views and mask with every sample observed in neither view given the first
    view's mean observed row (of the prepared, z-scored rows: the z-score of the raw mean row)."""
    uncovered = ~mask.any(dim=1)
    if not uncovered.any():
        return xs, mask
    first = xs[0].clone()
    first[uncovered] = xs[0][mask[:, 0]].mean(dim=0)
    filled = mask.clone()
    filled[uncovered, 0] = True
    return [first, xs[1]], filled


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> list[Tensor]:
    """One epoch's shuffled index batches, the last partial batch kept (as the code); a last
    batch of one sample joins the previous batch, since BatchNorm cannot train on one row."""
    batches = list(minibatches(n, batch_size, generator, device=device, drop_last=False))
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


# --- training --------------------------------------------------------------------------------

def batch_losses(model: ProImpNet, x1: Tensor, x2: Tensor, matching: Tensor | None, cfg: Config) -> dict[str, Tensor]:
    """The named loss parts of one batch of complete pairs and their sum under ``"total"``; a
    switched-off part is absent and not computed; ``pro`` needs a matching."""
    first, second = model.stream(0, x1), model.stream(1, x2)
    parts = {"ins": instance_loss(model, first.h, second.h, cfg.tau_ins)}
    if cfg.use_reg:
        parts["reg"] = attention_regulariser([first.a, second.a], cfg.reg_balance, cfg.reg_sharp)
    if cfg.use_pro and matching is not None:
        parts["pro"] = prototype_loss(model, first.c, second.c, matching, cfg.tau_pro, cfg.pro_peak)
    parts["total"] = sum(parts.values())
    return parts


@dataclass
class Matching:
    """The prototype matching and its label-free diagnostics."""

    pi: Tensor  # (K,) view-1 prototype matched to each view-2 prototype
    agreement: float  # fraction of complete pairs whose peaks agree under pi
    prototypes_used: list[int]  # distinct most-attended prototypes per view


@torch.no_grad()
def compute_matching(model: ProImpNet, xs: Sequence[Tensor], rows: Tensor, n_clusters: int, chunk: int,
                     device: torch.device, precision: str) -> Matching:
    """Eval mode, all complete pairs: most attended prototype in each view -> K x K counts ->
    Hungarian. Restores training mode afterwards."""
    was_training = model.training
    model.eval()
    peaks: list[list[Tensor]] = [[], []]
    for idx in rows.split(chunk):
        with autocast(device, precision):
            for v in (0, 1):
                peaks[v].append(model.attention_of(v, xs[v][idx]).argmax(dim=1))
    model.train(was_training)
    assign = [torch.cat(p) for p in peaks]
    counts = prototype_counts(assign[0], assign[1], n_clusters)
    pi = match_prototypes(counts)
    agreement = float(counts[pi, torch.arange(n_clusters, device=counts.device)].sum()) / max(len(rows), 1)
    return Matching(pi=pi, agreement=agreement, prototypes_used=[int(a.unique().numel()) for a in assign])


@torch.no_grad()
def readout(model: ProImpNet, xs: Sequence[Tensor], mask: Tensor, matching: Tensor, cfg: Config,
            device: torch.device, precision: str) -> Tensor:
    """The (N, 2D) concatenated representations of all samples in order (eval mode): observed
    views -> n(h^v); a missing view -> ``cfg.impute``."""
    model.eval()
    n = mask.shape[0]
    parts = [torch.zeros(n, cfg.dim, device=device) for _ in range(2)]
    for v in (0, 1):
        for idx in mask[:, v].nonzero().squeeze(1).split(cfg.batch_size):
            with autocast(device, precision):
                parts[v][idx] = observed_representation(model, v, xs[v][idx]).float()
    for target in (0, 1):
        source = 1 - target
        rows = (~mask[:, target]).nonzero().squeeze(1)  # observed in the source view (checked)
        if cfg.impute == "cross_copy":
            parts[target][rows] = parts[source][rows]
        elif cfg.impute == "prototype":
            for idx in rows.split(cfg.batch_size):
                with autocast(device, precision):
                    parts[target][idx] = imputed_representation(
                        model, target, xs[source][idx], matching, cfg.impute_residual).float()
    return torch.cat(parts, dim=1)


def fit_predict(inp: MethodInput) -> MethodOutput:
    """Train ProImp on the complete pairs of its two views and cluster all N samples."""
    cfg = Config.from_options(inp.options)
    activations = view_activations(cfg.activations)  # option errors before data errors
    device = inp.device
    autocast(device, inp.precision)  # rejects an unknown precision before any work
    views = check_views(cfg.views, len(inp.views))
    mask = inp.mask.to(device)[:, list(views)]
    _check_mask(mask, views, cfg.uncovered)
    if inp.n_clusters < 2:
        raise MvbenchError(f"proimp: n_clusters must be >= 2, got {inp.n_clusters}")
    xs, stats = prepared_views([inp.views[v] for v in views], mask, cfg.norm_stats)
    complete = mask.all(dim=1).nonzero().squeeze(1)
    k = inp.n_clusters

    # Model init, dropout and batch order each from their own stream; the caller's RNG is left alone.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(inp.seed_for("init"))
        model = ProImpNet([x.shape[1] for x in xs], k, hidden=cfg.hidden, dim=cfg.dim,
                          activations=activations, dropout=cfg.dropout).to(device)
        torch.manual_seed(inp.seed_for("dropout"))
        generator = torch_generator(inp.seed_for("batches"))
        trainer = Trainer.with_adam(model, inp.progress, lr=cfg.lr,
                                    batches=lambda: epoch_batches(len(complete), cfg.batch_size, generator, device))
        matching: Matching | None = None

        def update_matching() -> None:
            """Match before the first epoch with L_pro (or the readout), then again every epoch
            under ``match_update=every_epoch``."""
            nonlocal matching
            if matching is None or cfg.match_update == "every_epoch":
                matching = trainer.timed("matching", lambda: compute_matching(
                    model, xs, complete, k, cfg.batch_size, device, inp.precision))

        def step(with_pro: bool) -> Step:
            def batch_step(idx: Tensor) -> dict[str, Tensor]:
                rows = complete[idx]
                with autocast(device, inp.precision):
                    return batch_losses(model, xs[0][rows], xs[1][rows], matching.pi if with_pro else None, cfg)
            return batch_step

        model.train()
        n_pretrain = min(cfg.pretrain_epochs, cfg.epochs)
        trainer.run_stage("pretrain", n_pretrain, step(with_pro=False))
        trainer.run_stage("train", cfg.epochs - n_pretrain, step(with_pro=True), before_epoch=update_matching)
        update_matching()
        read_xs, read_mask = mean_filled(xs, mask)
        features = trainer.timed("readout", lambda: readout(model, read_xs, read_mask, matching.pi, cfg, device,
                                                             inp.precision))
    labels, _ = trainer.timed("kmeans", lambda: kmeans(features, k, n_init=cfg.kmeans_n_init,
                                                       seed=inp.seed_for("kmeans")))
    extras = {
        "views_used": list(views),
        "n_train_pairs": int(len(complete)),
        "n_uncovered_mean_filled": int((~mask.any(dim=1)).sum()),
        "zscore_mean_std": stats,
        "prototype_matching": matching.pi.cpu().tolist(),
        "matching_agreement": matching.agreement,
        "prototypes_used": matching.prototypes_used,
        **trainer.extras,
        DIAGNOSTICS_KEY: diagnostics(features),  # no soft assignments: k-means labels the readout
    }
    return MethodOutput(labels=labels.cpu().numpy().astype(np.int64), extras=extras)


SPEC = MethodSpec(
    name="proimp",
    # A run of seconds on tiny data, for mvbench check.
    smoke_options={"pretrain_epochs": 1, "epochs": 2, "hidden": (32, 32, 32), "dim": 16, "kmeans_n_init": 2},
    fit_predict=fit_predict,
    description="ProImp: two-view incomplete clustering by prototype attention, a peaked prototype "
                "contrast and imputation of a missing view from the other view's prototype attention",
    citation=("Li, Li, Yang, Hu, Peng, Peng. Incomplete Multi-view Clustering via Prototype-based "
              "Imputation. IJCAI 2023."),
    options=OPTIONS,
    handles_missing=True,
    presets=PRESETS,
    variants=VARIANTS,
)


mvbench_methods = method_hook(SPEC)
