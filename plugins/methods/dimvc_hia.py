"""DIMVC-HIA (AAAI 2026): deep incomplete multi-view clustering via hierarchical imputation
and alignment. Handles missing views natively: only observed rows are ever encoded.

Per batch: encode observed rows, predict q; view semantic similarity from co-observed samples;
level-1 imputation of missing assignments from the most similar observed view; level-2
imputation of missing features from cluster prototypes; reconstruction, EBM compactness and
similarity-weighted contrastive assignment alignment (CAA). See dimvc_hia_parts for the parts
and the choices the specification leaves open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.errors import MvbenchError
from mvbench.hookspecs import method_hook
from mvbench.nn import SIMILARITIES, autocast, torch_generator
from mvbench.options import (Option, batch_size, choice, epochs, hidden_widths, layer_size,
                             learning_rate, options_class)
from mvbench.specs import MethodInput, MethodOutput, MethodSpec, Variant
from mvbench.training import Trainer, shuffled_batches
from mvbench_plugins.methods.dimvc_hia_parts import (
    SIM_REDUCTIONS,
    DimvcHiaNet,
    caa_pair_terms,
    cluster_prototypes,
    ebm_loss,
    impute_assignments,
    impute_features,
    observed_entries,
    view_pairs,
    view_similarity,
)

OPTIONS = (
    Option("alpha", "float", 0.1, "weight of the EBM loss (0 = energy nets never evaluated)", minimum=0.0, ablation=True),
    Option("beta", "float", 0.01, "weight of contrastive assignment alignment (0 = no CAA)", minimum=0.0, ablation=True),
    Option("gamma", "float", 1.0, "weight of the reconstruction loss (0 = none)", minimum=0.0, ablation=True),
    Option("tau_l", "float", 1.0, "temperature of the cluster-level contrast L_label", minimum=1e-6),
    choice("sim_normalization", ("dot", "cosine"),
           "view similarity on sharpened columns: dot product (reference) or cosine"),
    choice("sim_reduction", SIM_REDUCTIONS,
           "view similarity from the 2K positive probabilities: code = their sum / number of "
           "co-observed samples in the batch (the authors' code); mean = their mean over anchors", default="code"),
    Option("detach_similarity", "bool", False,
           "stop the gradient at the view similarity (default false: the authors' code lets the "
           "CAA loss's gradient flow through it)"),
    choice("label_similarity", SIMILARITIES,
           "similarity of L_label's cluster-level contrast: cosine, or the plain dot product (the "
           "authors' code on MNIST-USPS: a preset)", default="cosine"),
    choice("small_data", ("off", "steps10"),
           "off: batch_size as given (the reference; a dataset of 210 samples then takes one step "
           "per epoch); steps10: the largest divisor of N not above batch_size that gives at least "
           "10 steps per epoch (a rule fixed in advance, never chosen by accuracy)"),
    hidden_widths((256, 512, 1024), "hidden sizes of each view's encoder"),
    layer_size("latent_dim", 1024, "size of the latent features h"),
    layer_size("low_dim", 1024, "hidden size of the cluster predictor"),
    batch_size(200, "mini-batch size"),
    epochs("pre_epochs", 100, "epochs of masked reconstruction pre-training"),
    epochs("epochs", 200, "epochs of the full loss"),
    learning_rate(1e-4, "Adam learning rate"),
    Option("assignment_imputation", "bool", True,
           "level 1: impute a missing view's q from the most similar observed view; off = "
           "CAA on co-observed rows only, labels from the observed views", ablation=True),
    Option("feature_imputation", "bool", True,
           "level 2: impute a missing view's features from cluster prototypes; off = missing "
           "entries are left out of reconstruction and EBM", ablation=True),
    Option("label_aware_negatives", "bool", True,
           "view similarity drops negatives whose largest entry is on the anchor's sample", ablation=True),
    choice("sim_weighting", ("similarity", "uniform"),
           "weight of each view pair's CAA: view similarity or uniform (1)", ablation=True),
    choice("caa_weighting", ("code", "paper"),
           "code: sim * beta * (L_label + L_prob) (reference); paper: sim * beta * L_label + beta * L_prob"),
    choice("prototype_scope", ("batch", "full"),
           "level-2 prototypes from the batch (reference) or from all observed samples "
           "(refreshed each epoch, the paper)"),
    Option("reconstruct_missing", "bool", True,
           "full-loss stage also reconstructs imputed entries toward an all-zero target "
           "(reference); false = observed rows only"),
)

PRESETS = {
    "handwritten": {"hidden": (256, 512, 1024), "latent_dim": 1024, "batch_size": 200},
    "mnist-usps": {"latent_dim": 1500, "batch_size": 50, "label_similarity": "dot"},
    "fashion": {"hidden": (256, 512), "latent_dim": 2000, "batch_size": 100, "low_dim": 500, "tau_l": 0.5},
    "bdgp": {"hidden": (256, 512), "latent_dim": 2000, "batch_size": 200},
}


Config = options_class("Config", OPTIONS, owner="method 'dimvc-hia'")


@dataclass
class BatchForward:
    """What one batch's forward pass produces before the losses."""

    h: Tensor  # (B, V, latent), zero where missing
    q: Tensor  # (B, V, K), zero where missing
    sim: Tensor  # (V, V)
    q_full: Tensor  # (B, V, K), level-1 imputed (= q when level 1 is off)


def forward_batch(model: DimvcHiaNet, xs: Sequence[Tensor], mask: Tensor, cfg: Config) -> BatchForward:
    """Encode observed rows, compute view similarity and apply level-1 imputation."""
    h, q = model.encode_observed(xs, mask)
    sim = view_similarity(q, mask, label_aware=cfg.label_aware_negatives,
                          normalize=cfg.sim_normalization == "cosine", reduction=cfg.sim_reduction)
    if cfg.detach_similarity:
        sim = sim.detach()
    q_full = impute_assignments(q, mask, sim) if cfg.assignment_imputation else q
    return BatchForward(h=h, q=q, sim=sim, q_full=q_full)


def batch_losses(model: DimvcHiaNet, xs: Sequence[Tensor], mask: Tensor, cfg: Config,
                 prototypes: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
    """The named parts of the full loss on one batch (a part whose weight is 0 is absent and
    not computed) and their weighted sum under ``"total"``.

    ``xs`` are the batch rows of each view with missing rows already zero-filled (never read
    as inputs: only observed rows are encoded; zeros are the reconstruction target of imputed
    entries). ``prototypes`` = full-data (V, K, latent) prototypes and counts, or None for
    batch prototypes.
    """
    fwd = forward_batch(model, xs, mask, cfg)
    parts: dict[str, Tensor] = {}
    if cfg.beta > 0:
        parts["caa"] = _caa_loss(fwd, mask, cfg)
    if cfg.gamma > 0 or cfg.alpha > 0:
        h_full, cluster, has_feature = _imputed_features(fwd, mask, cfg, prototypes)
        if cfg.gamma > 0:
            rec_rows = has_feature if cfg.reconstruct_missing else mask
            parts["rec"] = cfg.gamma * _reconstruction_loss(model, xs, h_full, rec_rows)
        if cfg.alpha > 0:
            # One host read for both selections (as h_full[has_feature] and cluster[has_feature]).
            rows = has_feature.flatten().nonzero().squeeze(1)
            energy, valid = model.energy(h_full.flatten(0, 1)[rows], cluster.flatten()[rows])
            parts["ebm"] = cfg.alpha * ebm_loss(energy, valid)
    parts["total"] = sum(parts.values(), torch.zeros((), device=mask.device))
    return parts


def _imputed_features(fwd: BatchForward, mask: Tensor, cfg: Config,
                      prototypes: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, Tensor]:
    if not cfg.feature_imputation:
        return fwd.h, fwd.q.argmax(dim=2), mask
    if prototypes is None:
        prototypes = cluster_prototypes(fwd.h, fwd.q.argmax(dim=2), mask, fwd.q.shape[2])
    return impute_features(fwd.h, fwd.q_full, mask, *prototypes)


def _caa_loss(fwd: BatchForward, mask: Tensor, cfg: Config) -> Tensor:
    """``sum_{v<v'} w(v, v') * [L_label + L_prob]`` with the configured weighting."""
    total = torch.zeros((), device=mask.device)
    pair_a, pair_b = view_pairs(mask.shape[1])
    for a, b in zip(pair_a.tolist(), pair_b.tolist()):
        if cfg.assignment_imputation:
            q_a, q_b = fwd.q_full[:, a], fwd.q_full[:, b]
        else:
            rows = mask[:, a] & mask[:, b]
            if not bool(rows.any()):
                continue
            q_a, q_b = fwd.q[rows, a], fwd.q[rows, b]
        label, prob = caa_pair_terms(q_a, q_b, cfg.tau_l, cfg.label_similarity)
        sim = fwd.sim[a, b] if cfg.sim_weighting == "similarity" else 1.0
        if cfg.caa_weighting == "code":
            total = total + sim * cfg.beta * (label + prob)
        else:
            total = total + sim * cfg.beta * label + cfg.beta * prob
    return total


def _reconstruction_loss(model: DimvcHiaNet, xs: Sequence[Tensor], h: Tensor, rows: Tensor) -> Tensor:
    """``sum_v MSE_v`` over the selected rows of each view (targets: zero-filled views)."""
    total = torch.zeros((), device=rows.device)
    for v, (ae, x, idx) in enumerate(zip(model.autoencoders.views, xs, observed_entries(rows)[2])):
        if idx.numel():
            total = total + F.mse_loss(ae.decode(h[idx, v]).float(), x[idx].float())
    return total


def pretrain_loss(model: DimvcHiaNet, xs: Sequence[Tensor], mask: Tensor) -> Tensor:
    """Masked reconstruction: ``sum_v MSE_v`` over the observed rows only."""
    total = torch.zeros((), device=mask.device)
    for ae, x, idx in zip(model.autoencoders.views, xs, observed_entries(mask)[2]):
        if idx.numel():
            obs = x[idx]
            total = total + F.mse_loss(ae(obs)[1].float(), obs.float())
    return total


@torch.no_grad()
def full_data_prototypes(model: DimvcHiaNet, views: Sequence[Tensor], mask: Tensor, batch_size: int,
                         precision: str) -> tuple[Tensor, Tensor]:
    """Prototypes (V, K, latent) and counts over every observed sample (paper's level 2)."""
    sums = counts = None
    for idx in torch.arange(mask.shape[0], device=mask.device).split(batch_size):
        m = mask[idx]
        with autocast(mask.device, precision):
            h, q = model.encode_observed([x[idx] for x in views], m)
        s, c = cluster_prototypes(h, q.argmax(dim=2), m, q.shape[2])
        s = s * c[..., None]
        sums, counts = (s, c) if sums is None else (sums + s, counts + c)
    return sums / counts.clamp_min(1)[..., None], counts


@torch.no_grad()
def predict(model: DimvcHiaNet, views: Sequence[Tensor], mask: Tensor, cfg: Config, precision: str
            ) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Labels of all N samples in fixed order (no sample dropped), the view similarity
    averaged over the inference batches (weighted by batch size), and the label-free
    diagnostics (mvbench.degeneracy) of the mean observed h and the mean q of each sample.

    Each batch runs the training forward: similarity, then level-1 imputation; the label is
    the argmax of the mean imputed q over views (over observed views when level 1 is off).
    """
    n, n_views = mask.shape
    labels, sim_sum = [], torch.zeros(n_views, n_views, device=mask.device)
    embeddings, assignments = [], []
    for idx in torch.arange(n, device=mask.device).split(cfg.batch_size):
        m = mask[idx]
        with autocast(mask.device, precision):
            fwd = forward_batch(model, [x[idx] for x in views], m, cfg)
        weights = torch.ones_like(m) if cfg.assignment_imputation else m
        mean_q = (fwd.q_full * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)
        labels.append(mean_q.argmax(dim=1))
        sim_sum += fwd.sim * idx.numel()
        assignments.append(mean_q)
        embeddings.append((fwd.h.float() * m[..., None]).sum(dim=1) / m.sum(dim=1, keepdim=True))
    return torch.cat(labels), sim_sum / n, diagnostics(torch.cat(embeddings), torch.cat(assignments))


def effective_batch_size(n: int, cfg: Config) -> int:
    """The training batch size: ``cfg.batch_size``, or under ``small_data=steps10`` the largest
    divisor of N not above it that gives at least 10 steps per epoch (N itself if none does)."""
    if cfg.small_data == "off":
        return cfg.batch_size
    fitting = [d for d in range(1, min(cfg.batch_size, n) + 1) if n % d == 0 and n // d >= 10]
    return max(fitting) if fitting else n


def _check_input(inp: MethodInput) -> None:
    mask = inp.mask
    if mask.dtype != torch.bool or mask.ndim != 2 or mask.shape[1] != len(inp.views):
        raise MvbenchError(f"dimvc-hia: mask must be a bool (N, {len(inp.views)}) tensor, got "
                           f"{tuple(mask.shape)} {mask.dtype}; pass the observed-view mask")
    if not bool(mask.any(dim=1).all()):
        raise MvbenchError("dimvc-hia: some samples have no observed view; drop them or fix the mask")
    if inp.n_clusters < 2:
        raise MvbenchError(f"dimvc-hia: n_clusters must be >= 2, got {inp.n_clusters}")


def _build_model(inp: MethodInput, cfg: Config) -> DimvcHiaNet:
    # Initialise from the trial seed without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(inp.seed_for("init"))
        model = DimvcHiaNet([x.shape[1] for x in inp.views], cfg.hidden, cfg.latent_dim,
                            cfg.low_dim, inp.n_clusters)
    return model.to(inp.device)


def fit_predict(inp: MethodInput) -> MethodOutput:
    """Train DIMVC-HIA on the observed views and label every sample."""
    cfg = Config.from_options(inp.options)
    _check_input(inp)
    mask = inp.mask.to(inp.device)
    # Missing rows hold NaN: replace them once so that no arithmetic can ever touch a NaN.
    views = [torch.where(mask[:, v, None], x.to(inp.device).float(), torch.zeros((), device=inp.device))
             for v, x in enumerate(inp.views)]
    model = _build_model(inp, cfg)
    batch_size = effective_batch_size(mask.shape[0], cfg)
    # torch's default Adam (not the fused mvbench.nn.adam): the one the recorded results used.
    batch_order = torch_generator(inp.seed_for("batches"))
    trainer = Trainer(inp.progress, torch.optim.Adam(model.parameters(), lr=cfg.lr),
                      shuffled_batches(mask.shape[0], batch_size, batch_order, device=inp.device),
                      checkpoint=inp.checkpoint, model=model, generators=[batch_order])
    prototypes: tuple[Tensor, Tensor] | None = None  # full-data prototypes of the epoch, or batch ones

    def pretrain_step(idx: Tensor) -> dict[str, Tensor]:
        with autocast(inp.device, inp.precision):
            return {"total": pretrain_loss(model, [x[idx] for x in views], mask[idx])}

    def train_step(idx: Tensor) -> dict[str, Tensor]:
        with autocast(inp.device, inp.precision):
            return batch_losses(model, [x[idx] for x in views], mask[idx], cfg, prototypes)

    def refresh_prototypes() -> None:
        nonlocal prototypes
        prototypes = full_data_prototypes(model, views, mask, cfg.batch_size, inp.precision)

    model.train()
    trainer.run_stage("pretrain", cfg.pre_epochs, pretrain_step)
    full_prototypes = cfg.prototype_scope == "full" and cfg.feature_imputation
    trainer.run_stage("train", cfg.epochs, train_step, before_epoch=refresh_prototypes if full_prototypes else None)
    model.eval()
    labels, sim, found = trainer.timed("inference", lambda: predict(model, views, mask, cfg, inp.precision))
    return MethodOutput(labels=labels.cpu().numpy(),
                        extras={"view_similarity": sim.cpu().tolist(), **trainer.extras, "batch_size": batch_size,
                                DIAGNOSTICS_KEY: found})


SPEC = MethodSpec(
    name="dimvc-hia",
    # A run of seconds on tiny data, for mvbench check.
    smoke_options={"pre_epochs": 1, "epochs": 1, "hidden": (32,), "latent_dim": 16, "low_dim": 16, "batch_size": 30},
    fit_predict=fit_predict,
    description="DIMVC-HIA: incomplete-view clustering by hierarchical (assignment, then feature) "
                "imputation, energy-based compactness and similarity-weighted assignment alignment",
    citation="Deep incomplete multi-view clustering via hierarchical imputation and alignment, AAAI 2026",
    options=OPTIONS,
    handles_missing=True,
    presets=PRESETS,
    # 2: the view similarity is the code's sum / co-observed count and is not detached; L_label
    # uses the dot product on MNIST-USPS; model and batch streams come from seed_for; a generated
    # mask's MinMax is fitted on the observed rows.
    version=2,
    variants={
        "dimvc-hia-noEBM": Variant({"alpha": 0.0}, "without the energy-based loss (alpha = 0)"),
        "dimvc-hia-noCAA": Variant({"beta": 0.0}, "without contrastive assignment alignment (beta = 0)"),
        "dimvc-hia-noRec": Variant({"gamma": 0.0}, "without the reconstruction loss (gamma = 0)"),
        "dimvc-hia-noAssignImp": Variant({"assignment_imputation": False}, "without level-1 assignment imputation"),
        "dimvc-hia-noFeatImp": Variant({"feature_imputation": False}, "without level-2 feature imputation"),
        "dimvc-hia-noLabelAware": Variant({"label_aware_negatives": False},
                                          "without label-aware negatives in the view similarity"),
        "dimvc-hia-uniformSim": Variant({"sim_weighting": "uniform"},
                                        "CAA weighted uniformly instead of by view similarity"),
        "dimvc-hia-steps10": Variant({"small_data": "steps10"},
                                     "small-data rule: batch = the largest divisor of N giving >= 10 steps per epoch"),
    },
)


mvbench_methods = method_hook(SPEC)
