"""Quality check of MFLVC with its faithful defaults on MNIST-USPS (target ACC >= 0.95).

Runs each (dataset, seed) as the `complete` suite runs it (registry dataset with the suite's
dataset options, MNIST-USPS's two views X1, X2 as stored; the method's defaults and the dataset's
preset, through the runner), logs each epoch's loss and prints ACC / NMI / ARI / PUR and the
seconds per epoch of every stage. ``--out`` is a records file shared with the `complete` suite
(and `ablations`, whose mflvc trials on MNIST-USPS are the same): seeds recorded ok there are
reused, the others run and are appended. The data folder is ``$MVBENCH_DATA`` or the user cache
(see the README).

    nohup python benchmarks/quality_mflvc.py --seeds 0 [--datasets mnist-usps ...] [--threads 1]
        [--set pre_epochs=50 ...] --out /tmp/mflvc_mnist.jsonl > /tmp/mflvc.log &
"""

from __future__ import annotations

import json
import statistics

import quality
from mvbench.runner import ResolvedTrial, Trial


def announce(run: quality.Quality, resolved: ResolvedTrial) -> str:
    dataset = run.dataset(resolved)
    return (f"{resolved.dataset_name} N={dataset.n_samples} dims={dataset.dims} K={dataset.n_clusters}; "
            f"{resolved.method_options}")


def describe(record: quality.Record) -> str:
    return json.dumps({"seed": record["seed"], "metrics": record["metrics"], "total_seconds": record["train_time"],
                       "median_epoch_seconds": quality.epoch_seconds(record, statistics.median)})


def main() -> None:
    parser = quality.make_parser(__doc__, datasets=["mnist-usps"], seeds=[0])
    parser.add_argument("--device", default="cpu")
    args = quality.parse(parser)
    run = quality.Quality(args, device=args.device)
    options = quality.method_options(args)
    for dataset in args.datasets:
        dataset_options = quality.suite_dataset_options("complete", dataset)
        run.run([Trial(method="mflvc", dataset=dataset, seed=seed, dataset_options=dataset_options,
                       method_options=options) for seed in args.seeds],
                describe, lambda resolved: announce(run, resolved))


if __name__ == "__main__":
    quality.run_main(main)
