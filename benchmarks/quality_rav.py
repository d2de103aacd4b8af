"""Quality check of RAV on NGs, 3Sources and Cora (targets: NGs ACC >= .95, 3Sources
NMI >= .55, Cora ACC >= .55; published: NGs ACC .980, 3Sources NMI .599, Cora ACC .592).

Runs each (dataset, seed) as the `complete` suite runs it (registry dataset with the suite's
dataset options, which for these three are the registry's defaults; the method's defaults,
through the runner) and prints per-seed and mean +- std (sample std, ddof=1) ACC / NMI / ARI /
PUR, the last-epoch view weights W and the mean off-diagonal entry of S^v (near 0 = the kernel is
the identity). ``--out`` is a records file shared with the `complete` suite (and `ablations`,
whose rav trials are the same): seeds recorded ok there are reused, the others run and are
appended. The data folder is ``$MVBENCH_DATA`` or the user cache (see the README).
``--noise-check`` instead trains on a synthetic 3-view set whose last view is pure noise and
prints each view's weight (the noise view should get the lowest); it is no runner trial and
writes no records.

    nohup python benchmarks/quality_rav.py --datasets ngs 3sources --seeds 0 1 2 3 4 \\
        [--threads 1] --out /tmp/rav_quality.jsonl > /tmp/rav_quality.log &
    python benchmarks/quality_rav.py --noise-check --set pre_epochs=50 epochs=50
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

import quality
from mvbench.device import resolve_device
from mvbench.metrics import evaluate
from mvbench.options import resolve_options
from mvbench.runner import Trial
from mvbench.seeding import seed_everything
from mvbench.specs import Dataset, MethodInput
from mvbench_plugins.methods import rav

from epoch_log import EpochLog

EPOCH_EVERY = 25
SHOWN = ("acc", "nmi", "ari", "pur")


def noise_dataset(seed: int = 0, n: int = 600, k: int = 4) -> Dataset:
    """Two informative views (class centres + noise) and a third view of pure noise, each
    feature standardised: the noise view must not be told apart by its scale alone."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    informative = [(rng.normal(size=(k, 50)) * 3.0)[y] + rng.normal(size=(n, 50)) for _ in range(2)]
    views = [((x - x.mean(0)) / x.std(0)).astype(np.float32) for x in [*informative, rng.normal(size=(n, 50))]]
    return Dataset(name="noise-view", views=views, labels=y.astype(np.int64), n_clusters=k)


def fit(dataset: Dataset, options: dict[str, Any], seed: int, device: torch.device, precision: str) -> quality.Record:
    """One seed on a dataset the registry does not know, as the part of a record that
    :func:`describe` reads."""
    seed_everything(seed)
    start = time.perf_counter()
    out = rav.fit_predict(MethodInput(
        views=[torch.as_tensor(x, device=device) for x in dataset.views],
        mask=torch.ones(dataset.n_samples, dataset.n_views, dtype=torch.bool, device=device),
        n_clusters=dataset.n_clusters, options=options, seed=seed, device=device,
        precision=precision, progress=EpochLog(EPOCH_EVERY), dataset_name=dataset.name,
    ))
    return {"seed": seed, "metrics": evaluate(dataset.labels, out.labels),
            "train_time": time.perf_counter() - start, "extras": out.extras}


def header(dataset: Dataset) -> str:
    return f"== {dataset.name}: N={dataset.n_samples} dims={dataset.dims} K={dataset.n_clusters}"


def describe(record: quality.Record) -> str:
    extras, metrics = record["extras"], record["metrics"]
    train = extras["loss_history"].get("train", {})
    weights = extras["view_weight_per_view"]
    shown = " ".join(f"{metric.upper()} {metrics[metric]:.4f}" for metric in SHOWN)
    per_epoch = quality.epoch_seconds(record, statistics.median)
    rounded = None if weights is None else [round(w, 4) for w in weights]
    s_offdiag = train["s_offdiag"][-1] if "s_offdiag" in train else None
    final_losses = {name: values[-1] for name, values in train.items()}
    return (f"  seed {record['seed']}: {shown} ({record['train_time']:.0f}s; per-epoch {per_epoch}) "
            f"view weights {rounded} S^v off-diagonal mean {s_offdiag}\n"
            f"    W = {extras['view_weights']}\n"
            f"    final losses {final_losses}")


def summary(name: str, records: list[quality.Record]) -> None:
    means = ", ".join(f"{metric.upper()} {quality.metric_summary(records, metric)}" for metric in SHOWN)
    print(f"  {name}: {means} over {len(records)} seeds", flush=True)


def noise_check(args: argparse.Namespace, options: dict[str, Any]) -> None:
    dataset = noise_dataset()
    print(header(dataset), flush=True)
    device, records = resolve_device(args.device), []
    for seed in args.seeds:
        records.append(fit(dataset, options, seed, device, args.precision))
        print(describe(records[-1]), flush=True)
    summary(dataset.name, records)


def main() -> None:
    parser = quality.make_parser(__doc__, datasets=["ngs", "3sources", "cora"], seeds=[0, 1, 2, 3, 4])
    parser.add_argument("--noise-check", action="store_true", help="the synthetic noise-view check only")
    parser.add_argument("--device", default="cpu")
    args = quality.parse(parser)
    if args.noise_check and args.out:
        parser.error("--noise-check writes no records; drop --out")
    options = quality.method_options(args)
    # RAV has no per-dataset presets, so these are the options of every trial.
    resolved_options = resolve_options(rav.OPTIONS, options, owner="rav")
    print(f"options: {resolved_options}", flush=True)
    if args.noise_check:
        noise_check(args, resolved_options)
        return
    run = quality.Quality(args, device=args.device, epoch_every=EPOCH_EVERY)
    for dataset in args.datasets:
        dataset_options = quality.suite_dataset_options("complete", dataset)
        records = run.run([Trial(method="rav", dataset=dataset, seed=seed, dataset_options=dataset_options,
                                 method_options=options) for seed in args.seeds],
                          describe, lambda resolved: header(run.dataset(resolved)))
        summary(dataset, records)


if __name__ == "__main__":
    quality.run_main(main)
