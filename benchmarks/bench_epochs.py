"""Seconds per epoch of each training stage of a method, on one dataset, device and precision.

Runs the method's ``fit_predict`` once and reads ``extras["epoch_seconds"]`` (every deep method
reports ``{stage: [seconds per epoch, ...]}``). With ``--bare`` it also times the bare
forward + backward + (fused) Adam step of a per-view MLP autoencoder of the given shape over the same
number of contiguous batches: the floor a reconstruction-only epoch can reach.

Examples::

    python benchmarks/bench_epochs.py mflvc handwritten --set pre_epochs=5 con_epochs=5 tune_epochs=5 --bare
    python benchmarks/bench_epochs.py rav random:2000:76,216,64,240,47,6:10 --precision bf16
    python benchmarks/bench_epochs.py mflvc mat:/path/MNIST_USPS.mat --set pre_epochs=3 con_epochs=3
    python benchmarks/bench_epochs.py dimvc-hia handwritten-mat --missing-rate 0.5 --set pre_epochs=3 epochs=3
    python benchmarks/bench_epochs.py proimp scene15 --missing get-mask --missing-rate 0.5 --seed 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mvbench.data.datadir import resolve_data_dir
from mvbench.device import check_precision, resolve_device
from mvbench.missing import blank_missing, fill_missing, make_mask
from mvbench.nn import MultiViewAutoencoder, adam, autocast
from mvbench.options import resolve_options, split_assignment
from mvbench.progress import QuietProgress
from mvbench.registry import build_registry
from mvbench.seeding import seed_everything
from mvbench.specs import Dataset, MethodInput


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


def bare_autoencoder_epoch(
    views: Sequence[torch.Tensor], hidden: Sequence[int], latent: int, batch_size: int,
    lr: float, precision: str, epochs: int,
) -> list[float]:
    """Seconds per epoch of forward + MSE + backward + Adam over contiguous batches."""
    device = views[0].device
    torch.manual_seed(0)
    model = MultiViewAutoencoder([x.shape[1] for x in views], hidden, latent).to(device)
    optimizer = adam(model.parameters(), lr=lr)
    n = views[0].shape[0]
    size = min(batch_size, n)
    batches = [[x[i:i + size] for x in views] for i in range(0, n - size + 1, size)]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        for xs in batches:
            with autocast(device, precision):
                _, x_hats = model(xs)
                loss = sum(F.mse_loss(xh.float(), x) for x, xh in zip(xs, x_hats))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        float(total)  # wait for the device
        seconds.append(time.perf_counter() - start)
    return seconds


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
                        help="also time the bare autoencoder epoch (options hidden, feature_dim or "
                             "latent_dim, batch_size, lr of the method; epochs = pre_epochs)")
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

    if args.bare:
        latent = options.get("feature_dim", options.get("latent_dim"))
        epochs = max(2, options.get("pre_epochs", 5))
        bare = bare_autoencoder_epoch(views, options["hidden"], latent, options["batch_size"],
                                      options["lr"], precision, epochs)
        print(f"  {'bare AE':<14}{summary(bare)}")
        pre = output.extras.get("epoch_seconds", {}).get("pretrain")
        if pre and len(pre) > 1:
            # Other processes on the machine only ever add time: the minimum is the robust ratio.
            print(f"  pretrain / bare: median {statistics.median(pre[1:]) / statistics.median(bare[1:]):.3f}"
                  f"  min {min(pre[1:]) / min(bare[1:]):.3f}")


if __name__ == "__main__":
    main()
