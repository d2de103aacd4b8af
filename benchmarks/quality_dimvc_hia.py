"""Quality check of DIMVC-HIA on handwritten with a sample-level MCAR mask.

Runs each seed as the very trial the `incomplete-faithful` suite runs (registry dataset
``handwritten-mat``, MinMax per view, the suite's ``mcar`` mask, the method's defaults), through
the same runner, so both always define the same trial; it adds an epoch log and prints ACC /
NMI / ARI / PUR, the seconds per epoch and the view similarity. Labels are used only for the
metrics. The data folder is ``$MVBENCH_DATA`` or the user cache (see the README).

    python benchmarks/quality_dimvc_hia.py --seeds 0 --rate 0.5 [--threads 1] [--precision bf16]
        [--set epochs=50 ...] [--out records.jsonl]

On the same machine and thread count a seed gives the labels of ``mvbench run`` (same labels
hash); the suite runs each trial on one thread (``--threads 1``). Another CPU or thread count
rounds differently, and over 300 epochs the labels of a seed drift apart.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

from mvbench.options import split_assignment
from mvbench.registry import get_registry
from mvbench.results import append_record
from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved

from epoch_log import EpochLog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a method option")
    parser.add_argument("--out", type=Path, help="append each trial's record (JSON lines)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    registry, cache = get_registry(), DatasetCache(None)
    settings = Settings(device="cpu", precision=args.precision)
    method_options = dict(split_assignment(s) for s in args.set)
    rows = []
    for seed in args.seeds:
        trial = Trial(method="dimvc-hia", dataset="handwritten-mat", seed=seed, missing="mcar",
                      missing_options={"rate": args.rate}, method_options=method_options)
        resolved = resolve(trial, registry)
        if not rows:
            print(f"dimvc-hia on handwritten-mat, mcar rate {args.rate}, {args.precision}, "
                  f"torch threads {torch.get_num_threads()}, options {resolved.method_options}",
                  flush=True)
        record = run_resolved(resolved, settings, cache, progress=EpochLog())
        if record["status"] != "ok":
            raise SystemExit(f"seed {seed} failed: {record['error']}")
        epoch_seconds = {stage: statistics.mean(s)
                         for stage, s in record["extras"]["epoch_seconds"].items() if s}
        print(f"seed {seed}: incomplete fraction {record['incomplete_fraction']:.3f}, "
              + " ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
              + f" | {record['train_time']:.0f}s, mean epoch seconds "
              + ", ".join(f"{k} {v:.2f}" for k, v in epoch_seconds.items())
              + f" | labels {record['labels_sha256'][:16]}", flush=True)
        print("view similarity:\n"
              + np.array2string(np.array(record["extras"]["view_similarity"]), precision=3))
        rows.append(record)
        if args.out:
            append_record(args.out, record)
    for key in rows[0]["metrics"]:
        values = [r["metrics"][key] for r in rows]
        spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        print(f"{key}: {statistics.mean(values):.4f}{spread}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; the seeds that finished are in --out, if given") from None
