"""GCFAggMVC (CVPR 2023, Yan et al.): global and cross-view feature aggregation for multi-view
clustering. Complete views only.

Per-view autoencoders give Z^v (512-d); a shared Linear head gives L2-normalised H^v. The GCFAgg
layer, a one-head transformer encoder layer whose tokens are the B samples of the batch, turns
the concatenation ``Z = [Z^1 .. Z^V]`` into aggregated features Z_hat and a B x B structure
matrix S (its attention weights); a Linear head gives the consensus H_hat. Training: 200 epochs
of reconstruction, then ``fine_tune_epochs`` of ``sum_v (lambda_c SgCL(H^v, H_hat; S) + MSE_v)``,
where the structure-guided contrastive loss weights each negative's logit by ``1 - S``.
Labels: k-means (n_init 100) on H_hat of all N samples after the last epoch.

Defaults follow the authors' code (with its torch patch, "Obtain -S.docx"): LN1(Z) is the
attention input and the same LN1 closes the first residual; S is returned after dropout and is
not detached; the weight multiplies the logit; one Adam (lr 3e-4) for both stages; batch 256,
shuffled, last partial batch dropped; fine-tune epochs per dataset as the reference sets them.
The paper's readings are options (``gcfagg_block="attention"``: Z_hat = S R; ``sg_weight="exp"``),
as are the stock layer (``attn_input="raw"``) and the ablations. Departures from the code that are
not options, because the code's behaviour is a bug: evaluation batches are a seeded permutation
of the samples (the code's file-order batches attend mostly within a class on class-sorted files;
``eval_batches`` keeps file order and one full batch available), every random stream is seeded,
the encoders run once per step, the unused ``nn.TransformerEncoder`` copy is not built, and a data
set smaller than the batch trains on one whole-data batch (B = min(batch_size, N)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.hookspecs import method_hook
from mvbench.nn import autocast, kmeans, torch_generator
from mvbench.options import (Option, adam_options, autoencoder_options, batch_size, choice, epochs,
                             kmeans_restarts, layer_size, options_class)
from mvbench.specs import MethodInput, MethodOutput, MethodSpec, Variant
from mvbench.training import Trainer, shuffled_batches
from mvbench_plugins.methods.gcfaggmvc_parts import (
    AGGREGATIONS,
    ATTN_INPUTS,
    BLOCKS,
    SG_WEIGHTS,
    ContrastMasks,
    GCFAggNet,
    attention_statistics,
    reconstruction_loss,
    structure_guided_contrastive_loss,
)

NAME = "gcfaggmvc"
EVAL_BATCHES = ("permuted", "file_order", "full")

OPTIONS = (
    epochs("pre_epochs", 200, "reconstruction-only pre-training epochs"),
    epochs("fine_tune_epochs", 100, "epochs of the full loss (reference presets per dataset: Caltech-4V 150, Caltech-5V 200)"),
    *adam_options(3e-4, "Adam learning rate (one optimiser for both stages)", weight_decay=0.0),
    batch_size(256, "training batch; B = min(batch_size, N), shuffled, last partial batch dropped"),
    *autoencoder_options((500, 500, 2000), 512, "size of each view's latent Z^v"),
    layer_size("high_dim", 128, "size of H^v and H_hat"),
    layer_size("ffn_dim", 256, "feed-forward width of the GCFAgg layer"),
    Option("dropout", "float", 0.1,
           "dropout of the GCFAgg layer (attention weights, attention output, inside and after the FFN)",
           minimum=0.0, maximum=1.0),
    Option("tau", "float", 0.5, "temperature of the structure-guided contrastive loss", minimum=1e-6),
    Option("lambda_c", "float", 1.0,
           "weight of the contrastive loss L_c (0 = absent: neither GCFAgg nor the heads run in training)",
           minimum=0.0, ablation=True),
    choice("sg_weight", SG_WEIGHTS,
           "structure weighting of the negatives: W = 1 - S multiplies the logit (reference), "
           "exp(logit) (adds log W), or none (plain contrast; the ablation)", default="logit", ablation=True),
    Option("detach_S", "bool", False, "stop the loss's gradient through the weights 1 - S (reference: not detached)"),
    choice("attn_input", ATTN_INPUTS,
           "attention input: ln = LN1(Z) (the authors' patched torch), raw = Z (stock post-norm layer)", default="ln"),
    choice("gcfagg_block", BLOCKS,
           "transformer = full encoder layer (reference); attention = Z_hat = S R only (paper, unconfirmed)", default="transformer"),
    choice("aggregation", AGGREGATIONS,
           "consensus from the GCFAgg layer, or concat = Linear of [Z^1..Z^V] (no S; plain contrast)", default="gcfagg", ablation=True),
    Option("recon_in_finetune", "bool", True, "keep sum_v MSE_v in the fine-tune loss", ablation=True),
    choice("eval_batches", EVAL_BATCHES,
           "evaluation batches: permuted = a seeded permutation of all N (unpermuted after), "
           "file_order = the reference (leaks the file's class order), full = one batch of N", default="permuted"),
    Option("eval_batch_size", "int", 256, "evaluation batch size (permuted and file_order)", minimum=1),
    kmeans_restarts(100, "k-means restarts on H_hat"),
)

# Fine-tune epochs of the reference code, keyed by our registry's names of its data sets
# (Prokaryotic 50, Cifar10 10 and Cifar100 200 are not in our registry).
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic3d": {"fine_tune_epochs": 100},
    "mnist-usps": {"fine_tune_epochs": 100},
    "hdigit": {"fine_tune_epochs": 100},
    "ccv": {"fine_tune_epochs": 100},
    "caltech2v": {"fine_tune_epochs": 100},
    "caltech3v": {"fine_tune_epochs": 100},
    "caltech4v": {"fine_tune_epochs": 150},
    "caltech5v": {"fine_tune_epochs": 200},
}

VARIANTS = {
    f"{NAME}-concat": Variant({"aggregation": "concat"},
                              "ablation: no GCFAgg; consensus = Linear of the concatenated Z, plain contrast"),
    f"{NAME}-noSG": Variant({"sg_weight": "none"}, "ablation: GCFAgg kept, negatives not weighted by 1 - S"),
    f"{NAME}-noLc": Variant({"lambda_c": 0.0}, "ablation: no contrastive loss (reconstruction only)"),
    f"{NAME}-noRec": Variant({"recon_in_finetune": False}, "ablation: no reconstruction in the fine-tune stage"),
}


Config = options_class("Config", OPTIONS, owner=f"method {NAME!r}")


def build_model(dims: Sequence[int], cfg: Config) -> GCFAggNet:
    """The network for views of widths ``dims`` (initialised from torch's global RNG)."""
    return GCFAggNet(dims, hidden=cfg.hidden, feature_dim=cfg.feature_dim, high_dim=cfg.high_dim,
                     aggregation=cfg.aggregation, block=cfg.gcfagg_block, attn_input=cfg.attn_input,
                     ffn_dim=cfg.ffn_dim, dropout=cfg.dropout)


def pretrain_loss(model: GCFAggNet, xs: Sequence[Tensor]) -> Tensor:
    """``sum_v MSE_v`` of the autoencoders alone."""
    return reconstruction_loss(xs, model.autoencoders(xs)[1])


def fine_tune_losses(model: GCFAggNet, xs: Sequence[Tensor], cfg: Config, masks: ContrastMasks | None = None
                     ) -> tuple[dict[str, Tensor], Tensor | None]:
    """The fine-tune loss of one batch as named parts (the loss is their sum) and the batch's
    pre-dropout attention (None when GCFAgg did not run).

    ``contrastive`` = ``lambda_c sum_v SgCL(H^v, H_hat; S)``, ``rec`` = ``sum_v MSE_v``. The
    encoders run once and feed the view head, the GCFAgg layer and the decoders. A part that is
    toggled off is neither computed nor present, and its modules do not run.
    """
    zs = model.autoencoders.encode(xs)
    parts: dict[str, Tensor] = {}
    attention = None
    if cfg.lambda_c > 0:
        h_views = model.view_features(zs)
        h_common, aggregated = model.common_features(zs)
        s = None
        if aggregated is not None:
            attention = aggregated.attention
            s = aggregated.s.detach() if cfg.detach_S else aggregated.s
        parts["contrastive"] = cfg.lambda_c * sum(
            structure_guided_contrastive_loss(h, h_common, s, cfg.tau, weighting=cfg.sg_weight, masks=masks)
            for h in h_views)
    if cfg.recon_in_finetune:
        parts["rec"] = reconstruction_loss(xs, model.autoencoders.decode(zs))
    return parts, attention


def evaluation_order(n: int, cfg: Config, seed: int, device: torch.device) -> Tensor | None:
    """Row order of the evaluation batches: a seeded permutation (``permuted``) or None (file
    order; ``full`` is one batch, so its order does not matter)."""
    if cfg.eval_batches != "permuted":
        return None
    return torch.randperm(n, generator=torch_generator(seed)).to(device)


@torch.no_grad()
def common_embedding(model: GCFAggNet, xs: Sequence[Tensor], cfg: Config, order: Tensor | None,
                     precision: str) -> tuple[Tensor, Tensor | None]:
    """H_hat of all N samples in file order (float32) and the S statistics of the evaluation
    batches (row-weighted mean of ``[row entropy, row max]``, None without GCFAgg).

    Batches are consecutive slices of ``order`` (None = file order) of ``eval_batch_size``
    rows, the last one partial; ``eval_batches="full"`` is one batch of all N. Each batch's
    H_hat is written back to its samples' rows, so the output is in file order whatever the
    batching.
    """
    n, device = xs[0].shape[0], xs[0].device
    size = n if cfg.eval_batches == "full" else cfg.eval_batch_size
    rows = torch.arange(n, device=device) if order is None else order
    out = torch.empty(n, cfg.high_dim, device=device)
    stats_sum = None
    for idx in rows.split(size):
        with autocast(device, precision):
            h_common, aggregated = model.common_features(model.autoencoders.encode([x[idx] for x in xs]))
        out[idx] = h_common.float()
        if aggregated is not None:
            weighted = attention_statistics(aggregated.attention) * idx.numel()
            stats_sum = weighted if stats_sum is None else stats_sum + weighted
    return out, (None if stats_sum is None else stats_sum / n)


def train(inp: MethodInput, cfg: Config) -> tuple[GCFAggNet, dict[str, Any]]:
    """Build the model from the ``init`` stream and run both stages (dropout drawn from the
    ``dropout`` stream); returns the trained model (in train mode) and the extras so far."""
    xs = [x.to(inp.device).float() for x in inp.views]
    torch.manual_seed(inp.seed_for("init"))
    model = build_model([x.shape[1] for x in xs], cfg).to(inp.device)
    torch.manual_seed(inp.seed_for("dropout"))
    n = xs[0].shape[0]
    batch_order = torch_generator(inp.seed_for("batches"))
    # The dropout stream is torch's global generator, which every snapshot also keeps.
    trainer = Trainer.with_adam(model, inp.progress, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                batches=shuffled_batches(n, cfg.batch_size, batch_order, device=inp.device),
                                checkpoint=inp.checkpoint, generators=[batch_order])
    batch = min(cfg.batch_size, n)
    masks = ContrastMasks.build(batch, inp.device)  # every training batch has exactly B rows

    def pretrain_step(idx: Tensor) -> dict[str, Tensor]:
        with autocast(inp.device, inp.precision):
            return {"total": pretrain_loss(model, [x[idx] for x in xs])}

    def fine_tune_step(idx: Tensor) -> dict[str, Tensor]:
        with autocast(inp.device, inp.precision):
            parts, attention = fine_tune_losses(model, [x[idx] for x in xs], cfg, masks)
        values = {"total": sum(parts.values(), torch.zeros((), device=inp.device)), **parts}
        if attention is not None:
            entropy, row_max = attention_statistics(attention)
            values.update(s_row_entropy=entropy, s_row_max=row_max)
        return values

    model.train()
    trainer.run_stage("pretrain", cfg.pre_epochs, pretrain_step)
    per_epoch = trainer.run_stage("fine_tune", cfg.fine_tune_epochs, fine_tune_step)
    extras = trainer.extras
    extras["loss_parts"]["fine_tune"] = {k: v for k, v in per_epoch.items() if not k.startswith("s_")}
    extras["s_diagnostics"] = {
        "row_entropy": per_epoch.get("s_row_entropy", []),
        "row_max": per_epoch.get("s_row_max", []),
        "uniform_row_entropy": math.log(batch),  # entropy of a uniform row of B entries, for scale
    }
    return model, extras


def fit_predict(inp: MethodInput) -> MethodOutput:
    """Train GCFAggMVC and label every sample by k-means on its H_hat."""
    cfg = Config.from_options(inp.options)
    autocast(inp.device, inp.precision)  # rejects an unknown precision before any work
    cuda = [inp.device] if inp.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # seeded streams without touching the caller's RNG
        model, extras = train(inp, cfg)
    xs = [x.to(inp.device).float() for x in inp.views]
    n = xs[0].shape[0]

    model.eval()
    start = time.perf_counter()
    order = evaluation_order(n, cfg, inp.seed_for("eval_order"), inp.device)
    h_common, eval_stats = common_embedding(model, xs, cfg, order, inp.precision)
    extras["epoch_seconds"]["inference"] = [time.perf_counter() - start]
    if eval_stats is not None:
        extras["s_diagnostics"]["eval_row_entropy"], extras["s_diagnostics"]["eval_row_max"] = eval_stats.tolist()

    inp.progress.stage("kmeans", 1)
    start = time.perf_counter()
    labels, _ = kmeans(h_common, inp.n_clusters, n_init=cfg.kmeans_n_init, seed=inp.seed_for("kmeans"))
    extras["epoch_seconds"]["kmeans"] = [time.perf_counter() - start]
    inp.progress.epoch(None)
    extras["n_parameters"] = sum(p.numel() for p in model.parameters())
    extras[DIAGNOSTICS_KEY] = diagnostics(h_common)  # no soft assignments: k-means labels H_hat
    return MethodOutput(labels=labels.cpu().numpy().astype(np.int64), extras=extras)


SPEC = MethodSpec(
    name=NAME,
    # A run of seconds on tiny data, for mvbench check.
    smoke_options={"pre_epochs": 1, "fine_tune_epochs": 1, "hidden": (32,), "feature_dim": 16, "high_dim": 8,
                   "ffn_dim": 16, "kmeans_n_init": 2},
    fit_predict=fit_predict,
    description=(
        "GCFAggMVC: per-view autoencoders, a transformer layer across the batch's samples aggregates "
        "the concatenated features into a consensus and a structure matrix S that down-weights "
        "negatives in a view-vs-consensus contrastive loss; k-means on the consensus. Complete views "
        "only: missing views are filled by the runner (--fill) before training"
    ),
    citation=(
        "Yan, Zhang, Lv, Tang, Yue, Liao, Lin. GCFAgg: Global and Cross-view Feature Aggregation for "
        "Multi-view Clustering. CVPR 2023."
    ),
    options=OPTIONS,
    handles_missing=False,
    presets=PRESETS,
    variants=VARIANTS,
)


mvbench_methods = method_hook(SPEC)
