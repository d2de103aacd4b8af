"""Seconds per epoch of each training stage of a method, on one dataset, device and precision.

Runs the method's ``fit_predict`` once and reads ``extras["epoch_seconds"]`` (every deep method
reports ``{stage: [seconds per epoch, ...]}``). With ``--bare`` it also times, for each training
stage it knows, the bare forward + loss + backward + (fused) Adam step of a network shaped like the
one the method trains in that stage, over the same rows, batches and learning rate, in contiguous
slices: the floor that stage's epoch can reach, and prints ``stage / bare``. ``BARE`` says, per
method, which network, loss, rows and batches each stage's bare runs (methods it does not name: a
plain autoencoder from ``hidden`` and ``feature_dim`` or ``latent_dim``, all rows, full batches,
compared with ``pretrain``).

Examples::

    python benchmarks/bench_epochs.py mflvc handwritten --set pre_epochs=5 con_epochs=5 tune_epochs=5 --bare
    python benchmarks/bench_epochs.py rav random:2000:76,216,64,240,47,6:10 --precision bf16
    python benchmarks/bench_epochs.py mflvc mat:/path/MNIST_USPS.mat --set pre_epochs=3 con_epochs=3
    python benchmarks/bench_epochs.py dimvc-hia handwritten-mat --missing-rate 0.5 --set pre_epochs=3 epochs=3
    python benchmarks/bench_epochs.py proimp scene15 --missing get-mask --missing-rate 0.5 --seed 1 --bare
    python benchmarks/bench_epochs.py dsimvc synthetic3d --missing dsimvc-mask --missing-rate 0.5 --bare
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mvbench.data.datadir import resolve_data_dir
from mvbench.device import check_precision, resolve_device
from mvbench.missing import blank_missing, fill_missing, make_mask
from mvbench.errors import MvbenchError
from mvbench.nn import MultiViewAutoencoder, adam, autocast, minibatches, torch_generator
from mvbench.options import resolve_options, split_assignment
from mvbench.progress import QuietProgress
from mvbench.registry import build_registry
from mvbench.seeding import seed_everything
from mvbench.specs import Dataset, MethodInput
from mvbench_plugins.methods import cvcl, dsimvc, gcfaggmvc, proimp


def random_dataset(spec: str, seed: int) -> Dataset:
    """``random:N:d1,d2,...:K``: uniform [0, 1) views (timing only, no structure)."""
    _, n, dims, k = spec.split(":")
    rng = np.random.default_rng(seed)
    views = [rng.random((int(n), int(d)), dtype=np.float32) for d in dims.split(",")]
    return Dataset(name="random", views=views, labels=rng.integers(0, int(k), int(n)), n_clusters=int(k))


def load_dataset(name: str, registry, data_dir: str | None, seed: int) -> Dataset:
    if name.startswith("random:"):
        return random_dataset(name, seed)
    if name.startswith("mat:") or name.endswith((".mat", ".h5", ".hdf5")):
        from mvbench.data.pathdataset import dataset_from_path

        return dataset_from_path(name.removeprefix("mat:"), {})
    spec = registry.dataset(name)
    return spec.load(resolve_options(spec.options, {}), str(resolve_data_dir(data_dir)))


# --- the bare network of each method -----------------------------------------------------------

# A bare step's loss: the network and the batch's views -> a scalar (run under autocast).
BareLoss = Callable[[nn.Module, Sequence[Tensor]], Tensor]


def reconstruction(model: nn.Module, xs: Sequence[Tensor]) -> Tensor:
    """``sum_v MSE(xhat^v, x^v)`` of a :class:`MultiViewAutoencoder`, in float32."""
    _, x_hats = model(xs)
    return sum(F.mse_loss(xh.float(), x) for x, xh in zip(xs, x_hats))


@dataclass
class BareInput:
    """What a bare builder reads: the method's resolved options, the views given to
    ``fit_predict`` (NaN on missing rows of a method that handles them), the (N, V) mask and K."""

    options: Mapping[str, Any]
    views: list[Tensor]
    mask: np.ndarray
    n_clusters: int


@dataclass
class Bare:
    """The bare epoch of one of a method's stages, shaped like the stage it is compared with."""

    stage: str  # the method's stage (a key of epoch_seconds) that the bare is the floor of
    label: str  # the name of the bare's output line
    description: str  # the network, printed so that the comparison can be checked
    model: nn.Module
    loss: BareLoss
    views: list[Tensor]  # the rows one epoch goes over, in the order they are sliced
    batch_sizes: list[int]  # one epoch's batches, cut by the method's own batch rule
    lr: float
    weight_decay: float = 0.0


def sizes_of(index_batches: Iterable[Tensor]) -> list[int]:
    """The sizes of one epoch's index batches. The bare takes its batch sizes from the method's
    own batch function (called on a throwaway generator) so that the two cannot drift apart."""
    return [int(idx.numel()) for idx in index_batches]


def method_batch_sizes(n: int, batch_size: int, *, drop_last: bool) -> list[int]:
    """The batches of :func:`mvbench.nn.minibatches` (every method's default rule): one batch of
    all ``n`` rows when ``n <= batch_size``, else full batches plus, unless ``drop_last``, the rest."""
    return sizes_of(minibatches(n, batch_size, torch_generator(0), device="cpu", drop_last=drop_last))


def autoencoder_description(model: MultiViewAutoencoder, **kw: Any) -> str:
    """The widths of the autoencoder (those of view 0; every view has the same) and ``kw``."""
    first = model.views[0]
    widths = [m.out_features for m in first.encoder if isinstance(m, nn.Linear)]
    extra = "".join(f", {k}={v}" for k, v in kw.items())
    return f"MultiViewAutoencoder(hidden={tuple(widths[:-1])}, latent={widths[-1]}{extra})"


def plain_autoencoder_bare(inp: BareInput) -> list[Bare]:
    """The original rule (MFLVC, RAV, DIMVC-HIA, and any method BARE does not name): a default
    MultiViewAutoencoder of ``hidden`` and ``feature_dim`` (else ``latent_dim``), all N rows,
    full batches of min(batch_size, N), the method's ``lr``, compared with ``pretrain`` only. Kept
    as it was so that the recorded ratios of these methods stay comparable, although DIMVC-HIA's
    own autoencoders end in ReLU (latent and output), it steps torch's unfused Adam, and its
    ``small_data`` option can change its batch size."""
    options = inp.options
    latent = options.get("feature_dim", options.get("latent_dim"))
    if latent is None or "hidden" not in options:
        raise MvbenchError("--bare: this method has no hidden and feature_dim/latent_dim options; "
                           "add its bare network to BARE in benchmarks/bench_epochs.py")
    model = MultiViewAutoencoder([x.shape[1] for x in inp.views], options["hidden"], latent)
    return [Bare("pretrain", "bare AE", autoencoder_description(model), model, reconstruction, list(inp.views),
                 method_batch_sizes(inp.views[0].shape[0], options["batch_size"], drop_last=True), options["lr"])]


def gcfaggmvc_bares(inp: BareInput) -> list[Bare]:
    """GCFAggMVC steps one Adam (its ``weight_decay``) in both stages, over all N rows in batches of
    B = min(batch_size, N), the last partial one dropped.

    ``pretrain``: its plain per-view autoencoders alone (MSE).

    ``fine_tune``: its whole network (``build_model``: autoencoders, view head, GCFAgg layer,
    common head), in training mode so that its dropout runs as in the method, under its own
    ``fine_tune_losses`` with the contrast masks built once for B, as its step does. Left out:
    the step's per-batch S diagnostics (``attention_statistics``, no gradient), which belong
    with the loss-part logging to the training loop's own cost. Nothing runs per epoch outside
    the batch loop.
    """
    cfg = gcfaggmvc.Config.from_options(inp.options)
    dims = [x.shape[1] for x in inp.views]
    n = inp.views[0].shape[0]
    sizes = method_batch_sizes(n, cfg.batch_size, drop_last=True)
    pretrain_model = MultiViewAutoencoder(dims, cfg.hidden, cfg.feature_dim)
    pretrain = Bare("pretrain", "bare AE", autoencoder_description(pretrain_model), pretrain_model, reconstruction,
                    list(inp.views), sizes, cfg.lr, cfg.weight_decay)

    model = gcfaggmvc.build_model(dims, cfg)
    # Every batch has exactly B rows (drop_last), so one set of masks serves them all, as in the method.
    masks = gcfaggmvc.ContrastMasks.build(min(cfg.batch_size, n), inp.views[0].device)

    def fine_tune_loss(m: nn.Module, xs: Sequence[Tensor]) -> Tensor:
        parts, _ = gcfaggmvc.fine_tune_losses(m, xs, cfg, masks)
        return sum(parts.values(), torch.zeros((), device=xs[0].device))

    # Without S (concat, or sg_weight="none") the contrast is the plain NT-Xent.
    plain = cfg.aggregation == "concat" or cfg.sg_weight == "none"
    contrast = "NT-Xent" if plain else f"SgCL({cfg.sg_weight})"
    loss_parts = (([f"{cfg.lambda_c:g} {contrast}"] if cfg.lambda_c > 0 else [])
                  + (["MSE"] if cfg.recon_in_finetune else []))
    common = ("concat, no GCFAgg" if cfg.aggregation == "concat"
              else f"GCFAgg {cfg.gcfagg_block}, ffn {cfg.ffn_dim}, dropout {cfg.dropout:g}")
    description = (f"GCFAggNet ({autoencoder_description(model.autoencoders)}, high_dim={cfg.high_dim}, "
                   f"{common}) with its fine-tune loss ({' + '.join(loss_parts)})")
    fine_tune = Bare("fine_tune", "bare GCFAggNet", description, model, fine_tune_loss, list(inp.views), sizes,
                     cfg.lr, cfg.weight_decay)
    return [pretrain, fine_tune]


def cvcl_bares(inp: BareInput) -> list[Bare]:
    """CVCL steps one Adam in both stages over all N rows; its ``drop_last`` option decides the
    last partial batch.

    ``pretrain``: autoencoders with a ReLU after every layer (latent and reconstruction
    included), MSE.

    ``finetune``: its whole network (``CVCLNet``: those autoencoders and the shared cluster
    head) under its own ``finetune_parts`` (column contrast, balance and reconstruction, as its
    options switch them). Nothing is left out: its step is that loss on the batch's rows, and
    nothing runs per epoch outside the batch loop.
    """
    cfg = cvcl.Config.from_options(inp.options)
    dims = [x.shape[1] for x in inp.views]
    sizes = method_batch_sizes(inp.views[0].shape[0], cfg.batch_size, drop_last=cfg.drop_last)
    relu_ends = {"latent_activation": "relu", "output_activation": "relu"}
    pretrain_model = MultiViewAutoencoder(dims, cfg.hidden, cfg.feature_dim, **relu_ends)
    pretrain = Bare("pretrain", "bare AE", autoencoder_description(pretrain_model, **relu_ends), pretrain_model,
                    reconstruction, list(inp.views), sizes, cfg.lr, cfg.weight_decay)

    model = cvcl.CVCLNet(dims, cfg.hidden, cfg.feature_dim, cfg.head_dim, int(inp.n_clusters),
                         head_activation=cfg.head_activation)
    description = (f"CVCLNet ({autoencoder_description(model.autoencoders, **relu_ends)}, head "
                   f"{cfg.feature_dim} -> {cfg.head_dim} -> {inp.n_clusters}) with its fine-tune loss "
                   f"(lambda {cfg.lambda_contrast:g}, beta {cfg.beta_balance:g}, {cfg.similarity}, "
                   f"rec {cfg.rec_weight if cfg.rec_in_finetune else 0:g})")
    finetune = Bare("finetune", "bare CVCLNet", description, model,
                    lambda m, xs: cvcl.finetune_parts(m, list(xs), cfg)["total"], list(inp.views), sizes,
                    cfg.lr, cfg.weight_decay)
    return [pretrain, finetune]


def dsimvc_bare(inp: BareInput) -> list[Bare]:
    """DSIMVC's AE_pre is a plain autoencoder of all views trained on the complete samples only
    (observed in every view), the last partial batch kept, Adam without weight decay."""
    cfg = dsimvc.Config.from_options(inp.options)
    complete = torch.as_tensor(inp.mask.all(axis=1), device=inp.views[0].device)
    views = [x[complete] for x in inp.views]  # complete rows: never a NaN
    model = MultiViewAutoencoder([x.shape[1] for x in views], cfg.hidden, cfg.feature_dim)
    return [Bare("pretrain", "bare AE", autoencoder_description(model) + ", complete rows", model, reconstruction,
                 views, method_batch_sizes(views[0].shape[0], cfg.batch_size, drop_last=False), cfg.lr)]


def proimp_bares(inp: BareInput) -> list[Bare]:
    """ProImp has no decoder: both its stages train its whole network (two view encoders,
    heads, prototype attention) with one Adam over the pairs complete in its two ``views``,
    batches cut by its ``epoch_batches``. Each bare runs that network and the stage's own loss
    (``batch_losses``) over contiguous slices of those pairs: what remains of the ratio is the
    training loop's own cost (index gathers, loss-part logging).

    ``pretrain`` (the epochs before L_pro): the instance contrast and the attention regulariser
    (``batch_losses`` without a matching).

    ``train``: the same plus L_pro, under the identity matching ``torch.arange(K)``: L_pro's
    cost does not depend on which permutation matches the prototypes. Left out: the matching
    itself (an eval-mode pass over all complete pairs and a Hungarian assignment), which runs
    before the batch loop and counts in the stage's epoch seconds: in its first epoch only
    (reported apart) under ``match_update=once``, in every epoch under ``every_epoch``.
    """
    cfg = proimp.Config.from_options(inp.options)
    used = proimp.check_views(cfg.views, len(inp.views))
    device = inp.views[0].device
    complete = torch.as_tensor(inp.mask[:, list(used)].all(axis=1), device=device)
    views = [inp.views[v][complete] for v in used]  # complete pairs: never a NaN
    sizes = sizes_of(proimp.epoch_batches(views[0].shape[0], cfg.batch_size, torch_generator(0), torch.device("cpu")))
    k = int(inp.n_clusters)

    def network() -> proimp.ProImpNet:
        # One network per stage, so that each bare starts from fresh weights and a fresh Adam.
        return proimp.ProImpNet([x.shape[1] for x in views], k, hidden=cfg.hidden, dim=cfg.dim,
                                activations=proimp.view_activations(cfg.activations), dropout=cfg.dropout)

    network_text = f"ProImpNet of views {list(used)} (hidden={cfg.hidden}, dim={cfg.dim})"
    pretrain_loss = f"instance contrast{' + attention regulariser' if cfg.use_reg else ''}"
    pretrain = Bare("pretrain", "bare ProImpNet",
                    f"{network_text} with its pre-training loss ({pretrain_loss}), complete pairs", network(),
                    lambda m, xs: proimp.batch_losses(m, xs[0], xs[1], None, cfg)["total"], views, sizes, cfg.lr)

    identity = torch.arange(k, device=device)
    train_loss = pretrain_loss + (" + L_pro under the identity matching" if cfg.use_pro else "")
    train = Bare("train", "bare ProImp+pro",
                 f"{network_text} with its training loss ({train_loss}), complete pairs", network(),
                 lambda m, xs: proimp.batch_losses(m, xs[0], xs[1], identity, cfg)["total"], views, sizes, cfg.lr)
    return [pretrain, train]


# The one place that maps a method to its bares: a builder returns one Bare per stage it
# covers, in the order the method runs them. A method not named here gets
# plain_autoencoder_bare.
BARE: dict[str, Callable[[BareInput], list[Bare]]] = {
    "mflvc": plain_autoencoder_bare,
    "rav": plain_autoencoder_bare,
    "dimvc-hia": plain_autoencoder_bare,
    "gcfaggmvc": gcfaggmvc_bares,
    "cvcl": cvcl_bares,
    "dsimvc": dsimvc_bare,
    "proimp": proimp_bares,
}


def build_bares(method: str, inp: BareInput) -> list[Bare]:
    """The bares of ``method``, their weights drawn from seed 0 whatever the trial seed."""
    torch.manual_seed(0)
    return BARE.get(method, plain_autoencoder_bare)(inp)


def bare_epochs(bare: Bare, precision: str, epochs: int) -> list[float]:
    """Seconds per epoch of forward + loss + backward + Adam over ``bare.batch_sizes``
    contiguous slices of ``bare.views`` (slicing, not gathering: the floor)."""
    device = bare.views[0].device
    model = bare.model.to(device)
    optimizer = adam(model.parameters(), lr=bare.lr, weight_decay=bare.weight_decay)
    starts = itertools.accumulate(bare.batch_sizes[:-1], initial=0)
    batches = [[x[i:i + size] for x in bare.views] for i, size in zip(starts, bare.batch_sizes)]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for xs in batches:
            with autocast(device, precision):
                loss = bare.loss(model, xs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        float(total)  # wait for the device
        seconds.append(time.perf_counter() - start)
    return seconds


def describe_batches(sizes: Sequence[int]) -> str:
    if not sizes:
        return "no batch"
    tail = f" + {sizes[-1]}" if len(sizes) > 1 and sizes[-1] != sizes[0] else ""
    full = len(sizes) - (1 if tail else 0)
    return f"{sum(sizes)} rows in {full} x {sizes[0]}{tail}"


def summary(values: Sequence[float]) -> str:
    # The first epoch pays one-off costs (allocator, kernel selection); report it apart.
    rest = values[1:] or values
    return (f"{len(values):>4} epochs  median {statistics.median(rest):8.3f} s  "
            f"min {min(rest):8.3f} s  first {values[0]:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method")
    parser.add_argument("dataset", help="a registered dataset, mat:PATH, or random:N:d1,d2,...:K")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="method options")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--missing-rate", type=float, default=0.0, metavar="R",
                        help="a mask of rate R (the runner's, for this seed and --missing): NaN rows for a "
                             "method that handles missing views, mean-filled rows for one that does not")
    parser.add_argument("--missing", default="mcar", metavar="MECHANISM",
                        help="the missingness mechanism of --missing-rate (e.g. get-mask, dsimvc-mask)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--bare", action="store_true",
                        help="also time the bare epoch of a network shaped like the method's in each stage "
                             "BARE covers (its widths, loss, rows, batches, lr) and compare it with that stage")
    parser.add_argument("-p", "--plugin", action="append", default=[], help="extra plugin module")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = check_precision(args.precision)
    registry = build_registry(args.plugin)
    method = registry.method(args.method)
    dataset = load_dataset(args.dataset, registry, args.data_dir, args.seed)
    given = dict(split_assignment(item) for item in args.set)
    options = resolve_options(method.options, {**method.presets.get(dataset.name, {}), **given},
                              owner=f"method {method.name!r}")
    mask = np.ones((dataset.n_samples, dataset.n_views), dtype=bool)
    if args.missing_rate:
        mechanism = registry.mechanism(args.missing)
        mask = make_mask(dataset, mechanism, resolve_options(mechanism.options, {"rate": args.missing_rate}),
                         args.seed)
    arrays = (blank_missing(dataset.views, mask) if method.handles_missing
              else fill_missing(dataset.views, mask, "mean"))
    views = [torch.as_tensor(x, dtype=torch.float32, device=device) for x in arrays]
    print(f"{method.name} on {dataset.name} (N={dataset.n_samples}, dims={dataset.dims}, "
          f"K={dataset.n_clusters}), missing rate {args.missing_rate:g}"
          f"{f' ({args.missing})' if args.missing_rate else ''}, {device}, {precision}, "
          f"{torch.get_num_threads()} threads")

    # Built before the run, so that a method --bare cannot shape fails at once.
    bares = build_bares(method.name, BareInput(options, views, mask, dataset.n_clusters)) if args.bare else []

    seed_everything(args.seed)
    start = time.perf_counter()
    output = method.fit_predict(MethodInput(
        views=views, mask=torch.as_tensor(mask, device=device),
        n_clusters=dataset.n_clusters, options=options, seed=args.seed, device=device,
        precision=precision, progress=QuietProgress(), dataset_name=dataset.name,
    ))
    print(f"fit_predict total {time.perf_counter() - start:.1f} s")
    for stage, values in output.extras.get("epoch_seconds", {}).items():
        if values:
            print(f"  {stage:<14}{summary(values)}")

    for bare in bares:
        stage = output.extras.get("epoch_seconds", {}).get(bare.stage, [])
        # As many epochs as the stage ran, and at least 2: the first one is reported apart.
        seconds = bare_epochs(bare, precision, max(2, len(stage)))
        decay = f", weight decay {bare.weight_decay:g}" if bare.weight_decay else ""
        print(f"  bare: {bare.description}; {describe_batches(bare.batch_sizes)}, lr {bare.lr:g}{decay}")
        print(f"  {bare.label:<14}{summary(seconds)}")
        if len(stage) > 1:
            # Other processes on the machine only ever add time: the minimum is the robust ratio.
            print(f"  {bare.stage} / bare: median {statistics.median(stage[1:]) / statistics.median(seconds[1:]):.3f}"
                  f"  min {min(stage[1:]) / min(seconds[1:]):.3f}")


if __name__ == "__main__":
    main()
