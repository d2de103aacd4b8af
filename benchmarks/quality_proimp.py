"""Quality check of ProImp on Scene-15 and CUB with the authors' own masks (get-mask).

Each seed is one runner trial: registry dataset, mechanism ``get-mask`` (COMPLETER/ProImp's
get_mask with numpy's legacy RandomState seeded by the trial seed, so seed t is the authors' mask
seed t), the method's defaults and dataset preset. Scene-15 is read unscaled (its first two views,
as the authors' loader; the registry's default MinMax is switched off), CUB with the registry's
MinMax (the authors' loader; on a masked trial the runner fits it on the observed rows). Labels
are used only for the metrics.

Published (authors' README, one run at mask seed 1, final epoch): Scene-15 eta = 0.5
ACC .4430 / NMI .4368 / ARI .2705. CUB has no confirmed number: report only.

    python benchmarks/quality_proimp.py [--datasets scene15 cub] [--seeds 1 2 3 4 5] [--rate 0.5]
        [--method proimp | proimp-codenorm | ...] [--threads 1] [--precision bf16]
        [--set epochs=10 ...] [--out records.jsonl]

``--method proimp-codenorm`` z-scores each view with the authors' statistics (over the zero-filled
matrix); the default uses the observed rows. Expect a few points of seed noise around the
published single run.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mvbench.options import split_assignment
from mvbench.registry import get_registry
from mvbench.results import append_record
from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved

from epoch_log import EpochLog

PLUGINS = ("mvbench_plugins.methods.proimp", "mvbench_plugins.missingness.get_mask")
# The authors' loaders: Scene-15 unscaled, CUB MinMax per feature (the registry's default).
DATASET_OPTIONS = {"scene15": {"preprocess": "none"}, "cub": {}}
PUBLISHED = {"scene15": {"acc": 0.4430, "nmi": 0.4368, "ari": 0.2705}, "cub": {}}
SHOWN = ("acc", "nmi", "ari", "pur")


def run_dataset(dataset: str, args: argparse.Namespace, registry, cache: DatasetCache,
                settings: Settings, method_options: dict[str, str]) -> list[dict]:
    """Run every seed on one dataset; print a line per seed and return the records."""
    rows = []
    for seed in args.seeds:
        trial = Trial(method=args.method, dataset=dataset, seed=seed, missing="get-mask",
                      missing_options={"rate": args.rate}, method_options=method_options,
                      dataset_options=DATASET_OPTIONS[dataset])
        resolved = resolve(trial, registry)
        if not rows:
            print(f"{args.method} on {dataset}, get-mask rate {args.rate}, {args.precision}, torch "
                  f"threads {torch.get_num_threads()}, options {resolved.method_options}", flush=True)
        record = run_resolved(resolved, settings, cache, progress=EpochLog())
        if record["status"] != "ok":
            raise SystemExit(f"{dataset} seed {seed} failed: {record['error']}")
        extras = record["extras"]
        epoch_seconds = {stage: statistics.mean(s) for stage, s in extras["epoch_seconds"].items() if s}
        print(f"{dataset} seed {seed}: {extras['n_train_pairs']} complete pairs, "
              + " ".join(f"{k} {record['metrics'][k]:.4f}" for k in SHOWN)
              + f" | matching agreement {extras['matching_agreement']:.3f}, prototypes used "
              f"{extras['prototypes_used']} | {record['train_time']:.0f}s, mean seconds "
              + ", ".join(f"{k} {v:.2f}" for k, v in epoch_seconds.items())
              + f" | labels {record['labels_sha256'][:16]}", flush=True)
        rows.append(record)
        if args.out:
            append_record(args.out, record)
    return rows


def summarise(dataset: str, rows: list[dict]) -> None:
    """Mean +- std (ddof=1) over the seeds beside the published single run."""
    for key in SHOWN:
        values = [r["metrics"][key] for r in rows]
        spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        published = PUBLISHED[dataset].get(key)
        beside = f"   (published {published:.4f}, one run at mask seed 1)" if published else ""
        print(f"{dataset} {key}: {statistics.mean(values):.4f}{spread}{beside}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASET_OPTIONS), default=["scene15", "cub"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--method", default="proimp", help="proimp or one of its variants")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a method option")
    parser.add_argument("--out", type=Path, help="append each trial's record (JSON lines)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    registry, cache = get_registry(PLUGINS), DatasetCache(None)
    settings = Settings(device="cpu", precision=args.precision)
    method_options = dict(split_assignment(s) for s in args.set)
    results = {d: run_dataset(d, args, registry, cache, settings, method_options) for d in args.datasets}
    for dataset, rows in results.items():
        summarise(dataset, rows)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; the seeds that finished are in --out, if given") from None
