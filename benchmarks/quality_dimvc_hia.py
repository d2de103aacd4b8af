"""Quality check of DIMVC-HIA on handwritten with a sample-level MCAR mask.

Runs each seed as the very trial the `incomplete-faithful` suite runs (registry dataset
``handwritten-mat`` with the suite's dataset options, which leave it at the registry's MinMax per
view, the suite's ``mcar`` mask, the method's defaults), through the same runner, so both always
define the same trial; it adds an epoch log and prints ACC / NMI / ARI / PUR, the seconds per
epoch and the view similarity. ``--out`` is a records file shared with the `incomplete-faithful`
suite (handwritten and MNIST-USPS at mcar 0.1 / 0.3 / 0.5 / 0.7) and the `ablations` suite
(handwritten at mcar 0.5): seeds recorded ok there are reused, the others run and are appended.
Labels are used only for the metrics. The data folder is ``$MVBENCH_DATA`` or the user cache (see the README).

    python benchmarks/quality_dimvc_hia.py --seeds 0 --rate 0.5 [--datasets handwritten-mat mnist-usps]
        [--threads 1] [--precision bf16] [--set epochs=50 ...] [--out records.jsonl]

On the same machine and thread count a seed gives the labels of ``mvbench run`` (same labels
hash); the `ablations` and `incomplete-faithful` suites run each trial on one thread
(``--threads 1``; some older `incomplete-faithful` records were made on two). Another CPU or thread
count rounds differently, and over 300 epochs the labels of a seed drift apart.
"""

from __future__ import annotations

import numpy as np

import quality
from mvbench.runner import Trial

def describe(record: quality.Record) -> str:
    return (f"seed {record['seed']}: incomplete fraction {record['incomplete_fraction']:.3f}, "
            f"{quality.metrics_text(record)} | {record['train_time']:.0f}s, mean epoch seconds "
            f"{quality.seconds_text(record)} | labels {record['labels_sha256'][:16]}\n"
            "view similarity:\n"
            + np.array2string(np.array(record["extras"]["view_similarity"]), precision=3))


def main() -> None:
    parser = quality.make_parser(__doc__, datasets=["handwritten-mat"], seeds=[0])
    parser.add_argument("--rate", type=float, default=0.5)
    args = quality.parse(parser)
    run, options = quality.Quality(args), quality.method_options(args)
    for dataset in args.datasets:
        dataset_options = quality.suite_dataset_options("incomplete-faithful", dataset)
        records = run.run([Trial(method="dimvc-hia", dataset=dataset, seed=seed, missing="mcar",
                                 missing_options={"rate": args.rate}, dataset_options=dataset_options,
                                 method_options=options) for seed in args.seeds], describe)
        for metric in records[0]["metrics"]:
            print(f"{metric}: {quality.metric_summary(records, metric)}")


if __name__ == "__main__":
    quality.run_main(main)
