"""CVCL (Chen, Mao, Woo & Peng, ICCV 2023): deep multi-view clustering by contrasting cluster
assignments.

Each view has an MLP autoencoder with a ReLU after every layer (latent and reconstruction
included); one head shared by all views (Linear F -> L, Linear L -> K, softmax) gives soft
assignments Q^v. Training, with one Adam throughout:

1. ``pretrain_epochs`` (200) of ``L_rec = sum_v mean((x^v - xhat^v)^2)``;
2. ``finetune_epochs`` (dataset preset) of
   ``sum_{v<w} [lambda l(P^v, P^w) + beta (b(P^v) + b(P^w))] + L_rec``, where P^v is the DEC
   sharpening of the batch's Q^v (not detached), l contrasts the K cluster columns of two views
   (dot product / tau by default, the reference's ``normalized=False``) and
   ``b(P) = sum_j pbar_j log pbar_j`` of P's column means (no log K offset).

Labels: argmax of the mean over views of the unsharpened Q^v, for all N samples in order.

The paper body could not be read, so every default follows the authors' code
(github.com/chenjie20/CVCL, HEAD e38a3e7), which produced the published numbers; its per-dataset
presets (tuned on test labels, kept as published) apply to the datasets it names, the argparse
defaults plus [256, 512, 1024] / F 1024 / L 1024 / lambda = beta = 0.01 to every other. Departures
from that code, all deliberate: batches are index slices of a seeded permutation; a dataset
smaller than one batch trains on one whole-data batch per epoch (the reference's drop_last
loader would yield none); evaluation covers all N samples in order (the reference evaluates a
shuffled drop_last loader); pbar is floored at 1e-12 in pbar log pbar (the reference can
produce 0 * log 0 = NaN); the model seed is the trial's, not the preset's seed (10, 20, 50).

Preprocessing is the dataset's, not the method's: CVCL's loader MinMax-scales every view over
all N samples for MSRCv1, COIL-20, handwritten and Scene-15, and reads MNIST-USPS, BDGP and
Fashion as stored. Our registry records that choice as the dataset option ``preprocess``
(``--set dataset.preprocess=minmax``); ``scene15`` and ``handwritten-mat`` default to MinMax,
``msrcv1`` does not (set it for the published setting). Since the decoder ends in ReLU, inputs
should be non-negative (negative features cannot be reconstructed).

Complete views only: the method does not handle missing views, so the runner fills them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from mvbench.degeneracy import DIAGNOSTICS_KEY, diagnostics
from mvbench.hookspecs import method_hook
from mvbench.nn import autocast, torch_generator
from mvbench.options import (Option, adam_options, autoencoder_options, batch_size, choice, epochs,
                             layer_size, options_class)
from mvbench.specs import MethodInput, MethodOutput, MethodSpec, Variant
from mvbench.training import Step, Trainer, shuffled_batches
from mvbench_plugins.methods.cvcl_parts import (
    HEAD_ACTIVATIONS,
    SIMILARITIES,
    CVCLNet,
    assignment_loss_parts,
    reconstruction_loss,
    view_agreement,
)

OPTIONS = (
    choice("similarity", SIMILARITIES,
           "column similarity in the contrast: dot product (reference normalized=False) or cosine "
           "(normalized=True); the presets choose per dataset", default="dot"),
    Option("temperature", "float", 1.0, "temperature of the column contrast (Fashion preset 0.5)", minimum=1e-6),
    Option("lambda_contrast", "float", 0.01, "weight lambda of the column contrast; 0 removes it",
           minimum=0.0, ablation=True),
    Option("beta_balance", "float", 0.01, "weight beta of the balance term sum_j pbar_j log pbar_j; 0 removes it",
           minimum=0.0, ablation=True),
    Option("rec_weight", "float", 1.0, "weight of L_rec in the fine-tune loss (pre-training is L_rec alone)",
           minimum=0.0),
    Option("sharpen", "bool", True,
           "contrast and balance on the DEC-sharpened P (reference); false: on Q itself", ablation=True),
    Option("detach_target", "bool", False,
           "hold the cluster frequencies f_j of the sharpening constant (no gradient through "
           "them); false: P fully differentiable (reference)"),
    Option("pretrain_epochs", "int", 200, "epochs of reconstruction-only pre-training (reference mse_epochs)",
           minimum=0, ablation=True),
    epochs("finetune_epochs", 100, "epochs of the full loss (reference con_epochs; presets per dataset)"),
    Option("rec_in_finetune", "bool", True, "keep L_rec in the fine-tune loss (false: the decoders do not run)"),
    *autoencoder_options((256, 512, 1024), 1024, "size F of the latent features z (reference dim_high_feature)"),
    layer_size("head_dim", 1024, "hidden size L of the cluster head (reference dim_low_feature)"),
    choice("head_activation", HEAD_ACTIVATIONS,
           "activation between the head's two linear layers: none (reference) or relu", default="none"),
    *adam_options(5e-4, "Adam learning rate (one optimiser for both stages)", weight_decay=0.0),
    batch_size(100, "mini-batch size (whole data in one batch when N is smaller)", minimum=2),
    Option("drop_last", "bool", True, "drop each epoch's last partial batch in training (reference)"),
)


def _preset(hidden: tuple[int, ...], feature_dim: int, head_dim: int, lr: float, batch_size: int,
            finetune_epochs: int, similarity: str, lambda_contrast: float, beta_balance: float,
            temperature: float = 1.0) -> dict[str, Any]:
    return {"hidden": hidden, "feature_dim": feature_dim, "head_dim": head_dim, "lr": lr,
            "batch_size": batch_size, "finetune_epochs": finetune_epochs, "similarity": similarity,
            "lambda_contrast": lambda_contrast, "beta_balance": beta_balance, "temperature": temperature}


# The reference main.py's settings per dataset (each batch divides its N); COIL20_3view and
# BDGP_fea_3view borrow the COIL20 and BDGP settings; `bdgp` and `fashion` are the reference's
# own files.
_BDGP = _preset((256, 512), 2000, 1024, 1e-4, 250, 100, "cosine", 0.01, 0.01)
PRESETS: dict[str, dict[str, Any]] = {
    "msrcv1": _preset((256, 512), 2000, 1024, 5e-4, 35, 400, "dot", 0.01, 0.005),
    "mnist-usps": _preset((256, 512, 1024), 1500, 1024, 1e-4, 50, 200, "dot", 0.05, 0.05),
    "coil20-3v": _preset((256, 512, 1024, 2048), 768, 200, 5e-4, 180, 400, "dot", 0.01, 0.01),
    "scene15": _preset((256, 512, 1024, 2048), 1500, 256, 5e-4, 69, 100, "dot", 0.01, 0.05),
    "handwritten-mat": _preset((256, 512, 1024), 1024, 1024, 1e-4, 200, 200, "cosine", 0.005, 0.001),
    "bdgp3v": _BDGP,
    "bdgp": _BDGP,
    "fashion": _preset((256, 512), 2000, 500, 5e-4, 100, 100, "cosine", 0.005, 0.005, temperature=0.5),
}

VARIANTS = {
    "cvcl-nocontrast": Variant({"lambda_contrast": 0.0}, "without the cluster-column contrast (lambda = 0)"),
    "cvcl-nobalance": Variant({"beta_balance": 0.0}, "without the balance term (beta = 0)"),
    "cvcl-nopretrain": Variant({"pretrain_epochs": 0}, "without reconstruction pre-training"),
    "cvcl-nosharpen": Variant({"sharpen": False}, "contrast and balance on Q instead of the sharpened P"),
}


Config = options_class("Config", OPTIONS, owner="method 'cvcl'")


def finetune_parts(model: CVCLNet, xs: list[Tensor], cfg: Config) -> dict[str, Tensor]:
    """The fine-tune loss of one batch as named parts (``contrast``, ``balance``, ``rec``;
    a part that is switched off is absent and not computed) and their sum under ``total``.
    The network runs under the caller's autocast; the losses in float32."""
    zs = model.autoencoders.encode(xs)
    parts = assignment_loss_parts(
        model.assignments(zs), lambda_contrast=cfg.lambda_contrast, beta_balance=cfg.beta_balance,
        temperature=cfg.temperature, similarity=cfg.similarity, sharpened=cfg.sharpen,
        detach_frequency=cfg.detach_target)
    if cfg.rec_in_finetune and cfg.rec_weight > 0:
        parts["rec"] = cfg.rec_weight * reconstruction_loss(xs, model.autoencoders.decode(zs))
    parts["total"] = torch.stack(list(parts.values())).sum() if parts else torch.zeros((), device=xs[0].device)
    return parts


def pretrain_parts(model: CVCLNet, xs: list[Tensor]) -> dict[str, Tensor]:
    """Reconstruction only."""
    return {"total": reconstruction_loss(xs, model.autoencoders(xs)[1])}


class Prediction(NamedTuple):
    """What :func:`predict` reads out of all N samples, in order."""

    labels: Tensor  # (N,): argmax of the mean over views of the unsharpened Q^v
    view_labels: Tensor  # (V, N): each view's own argmax
    mean_q: Tensor  # (N, K)
    embedding: Tensor  # (N, V * feature_dim): the views' features side by side


@torch.no_grad()
def predict(model: CVCLNet, views: list[Tensor], batch_size: int, precision: str) -> Prediction:
    """Read every sample out in order, in batches of ``batch_size`` (eval mode)."""
    model.eval()
    n = views[0].shape[0]
    mean_q, view_labels, embedding = [], [], []
    for idx in torch.arange(n, device=views[0].device).split(batch_size):
        with autocast(views[0].device, precision):
            zs = model.autoencoders.encode([x[idx] for x in views])
            q = model.assignments(zs)  # float32 (V, B, K)
        mean_q.append(q.mean(dim=0))
        view_labels.append(q.argmax(dim=2))
        embedding.append(torch.cat([z.float() for z in zs], dim=1))
    model.train()
    mean = torch.cat(mean_q)
    return Prediction(mean.argmax(dim=1), torch.cat(view_labels, dim=1), mean, torch.cat(embedding))


def _build_model(inp: MethodInput, cfg: Config) -> CVCLNet:
    # The trial's own init stream, without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(inp.seed_for("init"))
        model = CVCLNet([x.shape[1] for x in inp.views], cfg.hidden, cfg.feature_dim, cfg.head_dim,
                        inp.n_clusters, head_activation=cfg.head_activation)
    return model.to(inp.device)


def fit_predict(inp: MethodInput) -> MethodOutput:
    """Train CVCL on the (complete or runner-filled) views and label every sample."""
    cfg = Config.from_options(inp.options)
    autocast(inp.device, inp.precision)  # rejects an unknown precision before any work
    views = [x.to(device=inp.device, dtype=torch.float32) for x in inp.views]
    model = _build_model(inp, cfg)
    batch_order = torch_generator(inp.seed_for("batches"))
    trainer = Trainer.with_adam(model, inp.progress, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                batches=shuffled_batches(views[0].shape[0], cfg.batch_size, batch_order,
                                                         device=inp.device, drop_last=cfg.drop_last),
                                checkpoint=inp.checkpoint, generators=[batch_order])

    def on_batch(batch_parts: Callable[[list[Tensor]], dict[str, Tensor]]) -> Step:
        def step(idx: Tensor) -> dict[str, Tensor]:
            with autocast(inp.device, inp.precision):
                return batch_parts([x[idx] for x in views])
        return step

    trainer.run_stage("pretrain", cfg.pretrain_epochs, on_batch(lambda xs: pretrain_parts(model, xs)))
    trainer.run_stage("finetune", cfg.finetune_epochs, on_batch(lambda xs: finetune_parts(model, xs, cfg)))
    found = trainer.timed("inference", lambda: predict(model, views, cfg.batch_size, inp.precision))
    labels = found.labels
    agreement = view_agreement(found.view_labels)
    n_views = len(views)
    mean_agreement = (float((agreement.sum() - agreement.diagonal().sum()) / (n_views * (n_views - 1)))
                      if n_views > 1 else None)
    sizes = torch.bincount(labels, minlength=inp.n_clusters)
    extras = {
        # Label-free checks: the views' argmax should mostly agree and no cluster should be empty.
        "view_agreement": agreement.cpu().tolist(),
        "mean_view_agreement": mean_agreement,
        "cluster_sizes": sizes.cpu().tolist(),
        "empty_clusters": int((sizes == 0).sum()),
        **trainer.extras,
        DIAGNOSTICS_KEY: diagnostics(found.embedding, found.mean_q),
    }
    return MethodOutput(labels=labels.cpu().numpy().astype(np.int64), extras=extras)


SPEC = MethodSpec(
    name="cvcl",
    # A run of seconds on tiny data, for mvbench check.
    smoke_options={"pretrain_epochs": 1, "finetune_epochs": 1, "hidden": (32,), "feature_dim": 16, "head_dim": 16, "batch_size": 30},
    fit_predict=fit_predict,
    description=(
        "CVCL: contrasts the DEC-sharpened cluster-assignment columns of every view pair (dot or "
        "cosine), with a balance term and reconstruction, after reconstruction pre-training. "
        "Complete views only (the runner fills missing views). The decoder ends in ReLU, so "
        "inputs should be non-negative (e.g. --set dataset.preprocess=minmax)"
    ),
    citation=(
        "Chen, Mao, Woo, Peng. Deep Multiview Clustering by Contrasting Cluster Assignments. "
        "ICCV 2023."
    ),
    options=OPTIONS,
    handles_missing=False,
    presets=PRESETS,
    variants=VARIANTS,
)


mvbench_methods = method_hook(SPEC)
