"""DSIMVC (Tang & Liu, ICML 2022, "Deep Safe Incomplete Multi-view Clustering: Theorem and
Algorithm"): impute missing views from learned neighbours, and let a bi-level (meta) weighting
decide how much each imputed sample counts, so that training is never worse than on the
complete samples alone.

Handles missing views natively: it receives the observed-view mask, and a missing row is never
read (the NaN the runner puts there is replaced by a zero placeholder at once, and every
computation selects observed rows or imputed values). With C = complete samples, I = the rest:

1. MinMax per view (fitted on the observed rows; ``scale_fit``).
2. An autoencoder AE_pre is trained ``pretrain_epochs`` on C (sum_v MSE); its encoders
   initialise the main model M (encoders, feature head with unnormalised h, cluster head).
3. A separate neighbour network Nb (L2-normalised h, decoders) trains ``neighbour_mse_epochs``
   of MSE and ``initial_epochs`` of the contrastive loss L_C on C.
4. Each missing view of a sample in I is imputed as the mean of up to ``knn_k`` neighbours
   found by inner product of Nb's features in the sample's observed views.
5. ``iterations`` bi-level steps, each on a batch from C and a batch from I
   (:func:`dsimvc_parts.bilevel_step`).
6. Labels: argmax of M's soft assignments averaged over each sample's observed views.

Losses (summed over view pairs): spectral contrastive on h (rows capped at norm sqrt(3)),
cluster-level contrast with negatives from the anchor's own view (cosine, temperature 1) plus
``log K - H(p)`` of both views. ``L_C`` on complete batches; ``L_I(w)`` on imputed batches
reweights the per-sample feature term only.

Faithful defaults follow the authors' code (github.com/Gasteinh/DSIMVC, HEAD 9448423; the
paper text was not readable): the label term's same-view negatives, the incomplete feature term
as a weighted mean (about 1/B of an unweighted L_F), no re-imputation during the bi-level loop
(the code's per-step refresh never reaches training), second-order meta gradient, learning
rates 3e-4 / 1e-3 (virtual step) / 4e-4 (weight net), 200 MSE epochs for Nb, and the code's
per-dataset presets (the DSIMVC++ fork's for synthetic3d, cora and ngs). Departures, each an
option or forced by a bug: MinMax fitted on the observed rows (the code fits on every row,
hidden ones included); neighbours ranked among the samples that observe the view (the code
also ranks rows it then rejects); a pool of complete samples smaller than one batch still
trains the neighbour network (one whole batch); every random stream seeded; data reset per
trial; an entry with no accepted neighbour takes the view's observed mean (the code asserts).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.errors import MvbenchError
from mvbench.hookspecs import method_hook
from mvbench.nn import MultiViewAutoencoder, adam, autocast, minibatches, torch_generator
from mvbench.options import (Option, autoencoder_options, batch_size, choice, epochs, layer_size,
                             learning_rate, options_class)
from mvbench.specs import MethodInput, MethodOutput, MethodSpec, Variant
from mvbench.training import BatchSource, Trainer
from mvbench_plugins.methods.dsimvc_parts import (
    DsimvcLosses,
    DsimvcNet,
    StepContext,
    WeightNet,
    bilevel_step,
    encode_rows,
    mean_over_views,
    neighbour_imputation,
    optimiser_step,
    plain_step,
    pooled_batches,
    reconstruction_loss,
)

OPTIONS = (
    epochs("pretrain_epochs", 100, "AE_pre epochs of sum_v MSE on the complete samples"),
    epochs("neighbour_mse_epochs", 200, "neighbour-net MSE epochs on the complete samples"),
    epochs("initial_epochs", 100, "neighbour-net epochs of the contrastive loss L_C"),
    epochs("iterations", 200, "bi-level steps (one complete and one imputed batch each)"),
    batch_size(256, "mini-batch size of every stage", minimum=2),
    learning_rate(3e-4, "Adam learning rate of AE_pre, the neighbour net and the model"),
    Option("meta_lr", "float", 1e-3, "SGD learning rate of the virtual step theta'", minimum=0.0),
    Option("wnet_lr", "float", 4e-4, "Adam learning rate of the weight net", minimum=0.0),
    layer_size("wnet_hidden", 100, "hidden width of the weight net K -> hidden -> 1"),
    *autoencoder_options((500, 500, 2000), 512, "encoder output size"),
    layer_size("high_dim", 128, "feature-head output size (h)"),
    Option("spectral_r", "float", 3.0, "rows of h with norm >= sqrt(r) are rescaled to sqrt(r)",
           minimum=1e-6),
    Option("label_temperature", "float", 1.0, "temperature of the cluster-level contrast", minimum=1e-6),
    Option("knn_k", "int", 3, "neighbours averaged per imputed entry", minimum=1),
    Option("topk", "int", 600, "ranked candidates walked per observed view", minimum=1),
    choice("weighting", ("meta", "uniform", "complete_only"),
           "imputed samples: bi-level meta weights (the method), all weighted 1 (uniform), or "
           "not trained on (complete_only, the paper's safety baseline)", ablation=True),
    choice("reimpute", ("off", "every_iter"),
           "off: impute once from the neighbour net (the code: its per-step refresh never reaches "
           "training); every_iter: after each step re-impute from a momentum memory of the "
           "model's features (the paper's dynamic imputation)"),
    Option("reimpute_momentum", "float", 0.5,
           "weight of the new features in the memory (every_iter only)", minimum=0.0, maximum=1.0),
    choice("inc_feature_scale", ("code", "xB"),
           "imputed feature term: weighted mean of l_i (code, ~1/B of L_F) or that times B (xB)"),
    choice("label_negatives", ("same_view", "all"),
           "negatives of the cluster contrast: the anchor's own view (code) or both views (MFLVC)"),
    choice("infer_views", ("observed", "with_imputed"),
           "labels from q averaged over the observed views (code) or over all views with the "
           "imputed ones"),
    choice("scale_fit", ("observed", "all"),
           "observed: MinMax per view fitted on the observed rows; all: the method does not "
           "rescale and the views must already lie in [0, 1] (the code fits on every row, hidden "
           "ones included; only a loader that scales before masking can do that, e.g. "
           "--set dataset.preprocess=minmax where the runner does not refit it on observed rows)"),
    Option("neighbour_drop_last", "bool", False,
           "true: the neighbour net's contrastive stage drops every partial batch, so fewer "
           "complete samples than one batch give zero batches (the code); false: such a pool "
           "trains on one whole batch"),
    Option("feature_term", "bool", True, "spectral contrastive feature term", ablation=True),
    Option("label_term", "bool", True, "cluster-level contrast", ablation=True),
    Option("balance", "bool", True, "balance term log K - H(p) of each view", ablation=True),
)

# The authors' per-dataset schedules (pretrain / initial / iterations), keyed by our names.
# synthetic3d, cora and ngs: the DSIMVC++ fork (GCFAgg's Table 5), not DSIMVC's own demo.
PRESETS: dict[str, dict[str, Any]] = {
    "mnist-usps": {"pretrain_epochs": 100, "initial_epochs": 80, "iterations": 200},
    **{name: {"pretrain_epochs": 100, "initial_epochs": 30, "iterations": 100}
       for name in ("synthetic3d", "cora", "ngs")},
}

VARIANTS = {
    "dsimvc-uniform": Variant({"weighting": "uniform"},
                              "every imputed sample weighted 1: no bi-level safety weighting"),
    "dsimvc-completeOnly": Variant({"weighting": "complete_only"},
                                   "trains on the complete samples only (the paper's safety baseline)"),
    "dsimvc-noFeature": Variant({"feature_term": False}, "without the spectral contrastive feature term"),
    "dsimvc-noLabel": Variant({"label_term": False}, "without the cluster-level contrast"),
    "dsimvc-noBalance": Variant({"balance": False}, "without the balance term"),
    "dsimvc-dynamic": Variant({"reimpute": "every_iter"},
                              "re-imputes after every bi-level step (the paper's dynamic imputation)"),
}


Config = options_class("Config", OPTIONS, owner="method 'dsimvc'")


def loss_settings(cfg: Config) -> DsimvcLosses:
    """The loss switches and constants that the parts module needs, from the options."""
    return DsimvcLosses(
        feature_term=cfg.feature_term, label_term=cfg.label_term, balance=cfg.balance,
        same_view_negatives=cfg.label_negatives == "same_view",
        label_temperature=cfg.label_temperature, spectral_r=cfg.spectral_r,
        feature_scale_by_batch=cfg.inc_feature_scale == "xB",
    )


# ---------------------------------------------------------------------------------------------
# input and scaling


def _check_input(inp: MethodInput, cfg: Config) -> None:
    mask, n_views = inp.mask, len(inp.views)
    if mask.dtype != torch.bool or mask.shape != (inp.views[0].shape[0], n_views):
        raise MvbenchError(f"dsimvc: mask must be a bool (N, {n_views}) tensor, got "
                           f"{tuple(mask.shape)} {mask.dtype}; pass the observed-view mask")
    if n_views < 2:
        raise MvbenchError("dsimvc contrasts view pairs and needs at least 2 views")
    if not bool(mask.any(dim=1).all()):
        raise MvbenchError("dsimvc: some samples have no observed view; drop them or fix the mask")
    n_complete = int(mask.all(dim=1).sum())
    if n_complete < 2:
        raise MvbenchError(f"dsimvc trains on the complete samples and needs at least 2; this mask "
                           f"leaves {n_complete}: lower the missing rate")
    if not (cfg.feature_term or cfg.label_term or cfg.balance):
        raise MvbenchError("dsimvc: feature_term, label_term and balance are all off; keep one")


def scaled_views(views: Sequence[Tensor], mask: Tensor, scale_fit: str) -> list[Tensor]:
    """Float32 copies of the views with missing rows set to a zero placeholder (never read as
    data) and, for ``scale_fit='observed'``, each feature MinMax-scaled over the observed rows
    (constant features -> 0). For ``'all'`` the views are left as given and their observed rows
    must lie in [0, 1]: the method cannot see the hidden rows the code's scaler was fitted on,
    so that fit has to come from the loader."""
    out = []
    for v, x in enumerate(views):
        rows = mask[:, v]
        x = torch.where(rows[:, None], x.float(), torch.zeros((), device=x.device))
        observed = x[rows]
        if scale_fit == "observed":
            low = observed.amin(dim=0)
            span = observed.amax(dim=0) - low
            x = torch.where(rows[:, None], (x - low) / torch.where(span > 0, span, torch.ones_like(span)), x)
        elif observed.numel() and (float(observed.min()) < -1e-6 or float(observed.max()) > 1 + 1e-6):
            raise MvbenchError(f"dsimvc: scale_fit=all expects views already MinMax-scaled by the "
                               f"loader, but view {v} spans [{float(observed.min()):.3g}, "
                               f"{float(observed.max()):.3g}]; add --set dataset.preprocess=minmax "
                               f"or use scale_fit=observed")
        out.append(x)
    return out


# ---------------------------------------------------------------------------------------------
# stages


def _epoch_batches(pool: Tensor, batch_size: int, generator: torch.Generator, *, drop_last: bool,
                   strict_drop_last: bool = False) -> BatchSource:
    """Shuffled batches of ``pool`` per epoch. ``strict_drop_last``: a pool smaller than one
    batch gives no batch at all (the authors' loader); otherwise it gives one whole batch."""
    def batches() -> list[Tensor]:
        if strict_drop_last and pool.numel() < batch_size:
            return []
        return [pool[idx] for idx in minibatches(pool.numel(), batch_size, generator, device=pool.device,
                                                 drop_last=drop_last)]
    return batches


def pretrain_encoders(ae: MultiViewAutoencoder, views: Sequence[Tensor], complete: Tensor, cfg: Config,
                      inp: MethodInput, generator: torch.Generator, trainer: Trainer) -> None:
    """AE_pre: ``pretrain_epochs`` of sum_v MSE on the complete samples, last partial batch kept."""
    optimizer = adam(ae.parameters(), lr=cfg.lr)

    def step(idx: Tensor) -> dict[str, Tensor]:
        xs = [x[idx] for x in views]
        with autocast(inp.device, inp.precision):
            _, x_hats = ae(xs)
        return {"total": optimiser_step(reconstruction_loss(xs, x_hats), optimizer)}

    trainer.run_stage("pretrain", cfg.pretrain_epochs, step,
                      batches=_epoch_batches(complete, cfg.batch_size, generator, drop_last=False))


def train_neighbour_net(net: DsimvcNet, views: Sequence[Tensor], complete: Tensor, cfg: Config,
                        inp: MethodInput, generator: torch.Generator, trainer: Trainer) -> None:
    """Nb: ``neighbour_mse_epochs`` of MSE (partial batches kept), then ``initial_epochs`` of
    L_C (partial batches dropped), one Adam for both."""
    optimizer = adam(net.parameters(), lr=cfg.lr)
    losses = loss_settings(cfg)

    def mse_step(idx: Tensor) -> dict[str, Tensor]:
        xs = [x[idx] for x in views]
        with autocast(inp.device, inp.precision):
            x_hats = net.reconstruct(xs)
        return {"total": optimiser_step(reconstruction_loss(xs, x_hats), optimizer)}

    def contrastive_step(idx: Tensor) -> dict[str, Tensor]:
        with autocast(inp.device, inp.precision):
            hs, qs = net([x[idx] for x in views], need_features=cfg.feature_term)
        return {"total": optimiser_step(losses.terms(hs, qs).unweighted(), optimizer)}

    trainer.run_stage("neighbour_mse", cfg.neighbour_mse_epochs, mse_step,
                      batches=_epoch_batches(complete, cfg.batch_size, generator, drop_last=False))
    trainer.run_stage("neighbour_contrastive", cfg.initial_epochs, contrastive_step,
                      batches=_epoch_batches(complete, cfg.batch_size, generator, drop_last=True,
                                             strict_drop_last=cfg.neighbour_drop_last))


class Imputer:
    """The imputed views: from the neighbour net once, then (``reimpute=every_iter``) from a
    momentum memory of the model's features after every step, as the paper describes."""

    def __init__(self, views: Sequence[Tensor], mask: Tensor, cfg: Config, precision: str) -> None:
        self.views, self.mask, self.cfg, self.precision = list(views), mask, cfg, precision
        self.filled: list[Tensor] = self.views
        self.counts = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)
        self.memory: list[Tensor] | None = None

    def impute(self, features: Sequence[Tensor]) -> None:
        self.filled, self.counts = neighbour_imputation(features, self.views, self.mask,
                                                        k=self.cfg.knn_k, topk=self.cfg.topk)

    def from_network(self, net: DsimvcNet) -> None:
        self.impute(encode_rows(net, self.views, self.mask, 1024, self.precision, features=True))

    def refresh(self, model: DsimvcNet) -> None:
        """The code's memory: the first call stores the model's features; each later call mixes
        them in (momentum), L2-normalises the rows and re-imputes."""
        current = encode_rows(model, self.views, self.mask, 1024, self.precision, features=True)
        if self.memory is None:
            self.memory = current
            return
        m = self.cfg.reimpute_momentum
        self.memory = [F.normalize((1 - m) * old + m * new, dim=1) for old, new in zip(self.memory, current)]
        self.impute(self.memory)

    def summary(self) -> dict[str, Any]:
        """Label-free diagnostics: accepted neighbours per imputed entry and fallbacks."""
        missing = ~self.mask
        accepted = self.counts[missing].float()
        return {
            "imputed_entries": int(missing.sum()),
            "neighbours_mean": float(accepted.mean()) if accepted.numel() else None,
            "neighbours_min": int(accepted.min()) if accepted.numel() else None,
            "fallbacks_to_view_mean": int((accepted == 0).sum()),
        }


def build_model(dims: Sequence[int], inp: MethodInput, cfg: Config, *, neighbour: bool) -> DsimvcNet:
    """The main model M (``neighbour=False``) or the neighbour net Nb."""
    return DsimvcNet(dims, inp.n_clusters, hidden=cfg.hidden, feature_dim=cfg.feature_dim, high_dim=cfg.high_dim,
                     normalize_features=neighbour, with_decoders=neighbour).to(inp.device)


META_STATS = ("meta_loss", "w_mean", "w_min", "w_max")


def train_bilevel(ctx: StepContext, imputer: Imputer, complete: Tensor, incomplete: Tensor | None,
                  cfg: Config, generator: torch.Generator, trainer: Trainer) -> dict[str, list[float]]:
    """``iterations`` steps (the stage's epochs, one batch each), each on the next batch of
    the complete and the incomplete pool (concatenated permutations). Meta weighting runs the
    bi-level step, the others a plain step. Returns per-iteration meta loss and weight
    statistics (meta weighting only)."""
    train_imputed = incomplete is not None and cfg.weighting != "complete_only"
    pairs: Iterator[tuple[Tensor, Tensor | None]] = iter(())
    if cfg.iterations > 0:  # without iterations the generator draws nothing
        complete_batches = pooled_batches(complete, cfg.iterations, cfg.batch_size, generator)
        incomplete_batches = (pooled_batches(incomplete, cfg.iterations, cfg.batch_size, generator)
                              if train_imputed else repeat(None))
        pairs = zip(complete_batches, incomplete_batches)

    def step(pair: tuple[Tensor, Tensor | None]) -> dict[str, Tensor]:
        rows_c, rows_i = pair
        xs_c = [x[rows_c] for x in imputer.filled]
        xs_i = None if rows_i is None else [x[rows_i] for x in imputer.filled]
        if xs_i is not None and cfg.weighting == "meta":
            values = dict(zip(("total", *META_STATS), bilevel_step(ctx, xs_c, xs_i)))
        else:
            values = {"total": plain_step(ctx, xs_c, xs_i)}
        if xs_i is not None and cfg.reimpute == "every_iter":
            imputer.refresh(ctx.model)
        return values

    stats = trainer.run_stage("bilevel", cfg.iterations, step, batches=lambda: [next(pairs)])
    return {key: stats.get(key, []) for key in META_STATS}


@torch.no_grad()
def final_state(model: DsimvcNet, views: Sequence[Tensor], mask: Tensor, cfg: Config,
                precision: str) -> tuple[Tensor, Tensor]:
    """(q, embedding) of all N samples in order: the soft assignments and the feature-head
    outputs, each averaged over the observed views (or over all views with the imputed ones,
    ``infer_views=with_imputed``). The labels are ``q.argmax(dim=1)``."""
    rows = mask if cfg.infer_views == "observed" else torch.ones_like(mask)
    qs = encode_rows(model, views, rows, 1024, precision, features=False)
    features = encode_rows(model, views, rows, 1024, precision, features=True)
    return mean_over_views(qs, rows), mean_over_views(features, rows)


@torch.no_grad()
def weight_summary(weight_net: WeightNet, model: DsimvcNet, views: Sequence[Tensor], incomplete: Tensor,
                   precision: str) -> dict[str, float]:
    """The final weights of all incomplete samples (imputed views included): label-free."""
    rows = torch.zeros(views[0].shape[0], len(views), dtype=torch.bool, device=incomplete.device)
    rows[incomplete] = True
    qs = encode_rows(model, views, rows, 1024, precision, features=False)
    weights = weight_net(torch.stack([q[incomplete] for q in qs]).mean(dim=0))
    quantiles = torch.quantile(weights, torch.tensor([0.1, 0.5, 0.9], device=weights.device))
    return {"mean": float(weights.mean()), "std": float(weights.std(unbiased=False)),
            "q10": float(quantiles[0]), "median": float(quantiles[1]), "q90": float(quantiles[2])}


def fit_predict(inp: MethodInput) -> MethodOutput:
    """Train DSIMVC on the observed views and label every sample."""
    cfg = Config.from_options(inp.options)
    autocast(inp.device, inp.precision)  # rejects an unknown precision before any work
    _check_input(inp, cfg)
    mask = inp.mask.to(inp.device)
    views = scaled_views([x.to(inp.device) for x in inp.views], mask, cfg.scale_fit)
    dims = [x.shape[1] for x in views]
    complete = mask.all(dim=1).nonzero().squeeze(1)
    incomplete = (~mask.all(dim=1)).nonzero().squeeze(1)
    incomplete = incomplete if incomplete.numel() else None
    needs_imputation = incomplete is not None and (cfg.weighting != "complete_only"
                                                   or cfg.infer_views == "with_imputed")
    train_weights = incomplete is not None and cfg.weighting == "meta"

    # Every network from the "init" stream, without touching the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(inp.seed_for("init"))
        model = build_model(dims, inp, cfg, neighbour=False)
        ae_pre = MultiViewAutoencoder(dims, cfg.hidden, cfg.feature_dim).to(inp.device)
        neighbour_net = build_model(dims, inp, cfg, neighbour=True) if needs_imputation else None
        weight_net = WeightNet(inp.n_clusters, cfg.wnet_hidden).to(inp.device) if train_weights else None
    generator = torch_generator(inp.seed_for("batches"))
    trainer = Trainer(inp.progress, None)  # every network has its own optimiser: the steps optimise

    pretrain_encoders(ae_pre, views, complete, cfg, inp, generator, trainer)
    for encoder, pretrained in zip(model.encoders, ae_pre.views):
        encoder.load_state_dict(pretrained.encoder.state_dict())
    del ae_pre

    imputer = Imputer(views, mask, cfg, inp.precision)
    if neighbour_net is not None:
        train_neighbour_net(neighbour_net, views, complete, cfg, inp, generator, trainer)
        trainer.timed("imputation", lambda: imputer.from_network(neighbour_net))
        del neighbour_net

    ctx = StepContext(model=model, model_optimizer=adam(model.parameters(), lr=cfg.lr), losses=loss_settings(cfg),
                      precision=inp.precision, weight_net=weight_net, meta_lr=cfg.meta_lr,
                      weight_optimizer=adam(weight_net.parameters(), lr=cfg.wnet_lr) if weight_net else None)
    meta_history = train_bilevel(ctx, imputer, complete, incomplete, cfg, generator, trainer)

    q, embedding = trainer.timed("inference", lambda: final_state(model, imputer.filled, mask, cfg, inp.precision))
    labels = q.argmax(dim=1)
    extras: dict[str, Any] = {
        "loss_history": trainer.extras["loss_history"], "epoch_seconds": trainer.extras["epoch_seconds"],
        "n_complete": int(complete.numel()), "n_incomplete": 0 if incomplete is None else int(incomplete.numel()),
        DIAGNOSTICS_KEY: diagnostics(embedding, q),
    }
    if needs_imputation:
        extras["imputation"] = imputer.summary()
    if train_weights:
        extras["meta_history"] = meta_history
        extras["final_weights"] = weight_summary(weight_net, model, imputer.filled, incomplete, inp.precision)
    return MethodOutput(labels=labels.cpu().numpy().astype(np.int64), extras=extras)


SPEC = MethodSpec(
    name="dsimvc",
    # A run of seconds on tiny data, for mvbench check.
    smoke_options={"pretrain_epochs": 1, "neighbour_mse_epochs": 1, "initial_epochs": 1, "iterations": 2,
                   "hidden": (32,), "feature_dim": 16, "high_dim": 8, "batch_size": 30},
    fit_predict=fit_predict,
    description="DSIMVC: incomplete-view clustering that imputes missing views from learned neighbours "
                "and weights the imputed samples by bi-level (meta) learning, so that they never hurt "
                "training on the complete samples",
    citation="Tang, Liu. Deep Safe Incomplete Multi-view Clustering: Theorem and Algorithm. ICML 2022 "
             "(PMLR 162:21090-21110)",
    options=OPTIONS,
    handles_missing=True,
    presets=PRESETS,
    variants=VARIANTS,
)


mvbench_methods = method_hook(SPEC)
