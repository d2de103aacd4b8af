"""Quality check of ProImp on Scene-15 and CUB with the authors' own masks (get-mask).

Each seed is one runner trial: registry dataset, mechanism ``get-mask`` (COMPLETER/ProImp's
get_mask with numpy's legacy RandomState seeded by the trial seed, so seed t is the authors' mask
seed t), the method's defaults and dataset preset. Scene-15 is read unscaled (its first two views,
as the authors' loader; the registry's default MinMax is switched off), CUB with the registry's
MinMax (the authors' loader; on a masked trial the runner fits it on the observed rows). Labels
are used only for the metrics. ``--out`` is a records file: seeds recorded ok there are reused,
the others run and are appended. No suite runs these trials (the `ci` suite runs ProImp on
synthetic data only), so the records are shared with no suite's.

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

import quality
from mvbench.runner import Trial

# The authors' loaders: Scene-15 unscaled, CUB MinMax per feature (the registry's default).
DATASET_OPTIONS = {"scene15": {"preprocess": "none"}, "cub": {}}
# The paper's single run, keyed by (dataset, missing rate): it reports Scene-15 at 0.5 only.
PUBLISHED = {("scene15", 0.5): {"acc": 0.4430, "nmi": 0.4368, "ari": 0.2705}}
SHOWN = ("acc", "nmi", "ari", "pur")


def describe(record: quality.Record) -> str:
    extras = record["extras"]
    return (f"{record['dataset']} seed {record['seed']}: {extras['n_train_pairs']} complete pairs, "
            f"{quality.metrics_text(record, SHOWN)} | matching agreement {extras['matching_agreement']:.3f}, "
            f"prototypes used {extras['prototypes_used']} | {record['train_time']:.0f}s, mean seconds "
            f"{quality.seconds_text(record)} | labels {record['labels_sha256'][:16]}")


def summarise(dataset: str, records: list[quality.Record], rate: float) -> None:
    """Mean +- std (ddof=1) over the seeds beside the published single run (at its rate only)."""
    for metric in SHOWN:
        published = PUBLISHED.get((dataset, rate), {}).get(metric)
        beside = f"   (published {published:.4f}, one run at mask seed 1)" if published else ""
        print(f"{dataset} {metric}: {quality.metric_summary(records, metric)}{beside}")


def main() -> None:
    parser = quality.make_parser(__doc__, datasets=["scene15", "cub"], seeds=[1, 2, 3, 4, 5],
                                 choices=tuple(DATASET_OPTIONS))
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--method", default="proimp", help="proimp or one of its variants")
    args = quality.parse(parser)
    run, options = quality.Quality(args), quality.method_options(args)
    results = {dataset: run.run([Trial(method=args.method, dataset=dataset, seed=seed, missing="get-mask",
                                       missing_options={"rate": args.rate}, method_options=options,
                                       dataset_options=DATASET_OPTIONS[dataset]) for seed in args.seeds], describe)
               for dataset in args.datasets}
    for dataset, records in results.items():
        summarise(dataset, records, args.rate)


if __name__ == "__main__":
    quality.run_main(main)
