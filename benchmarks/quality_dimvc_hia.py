"""Quality check of DIMVC-HIA on handwritten with a sample-level MCAR mask.

Reads handwritten.mat (X: cell of N x d views, Y: 1-based labels) from $MVBENCH_DATA or
../shared/datasets, MinMax-scales each view (as the reference loader does), draws the suite's
``mcar`` mask for each seed, runs the method with its handwritten preset and prints
ACC / NMI / ARI / PUR and per-epoch seconds. Labels are used only for the metrics.

    python benchmarks/quality_dimvc_hia.py --seeds 0 --rate 0.5 [--precision bf16]
        [--set epochs=50 ...] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.io
import torch

from mvbench.metrics import evaluate
from mvbench.missing import blank_missing, make_mask
from mvbench.options import resolve_options, split_assignment
from mvbench.specs import Dataset, MethodInput
from mvbench_plugins.methods.dimvc_hia import SPEC
from mvbench_plugins.missingness.mcar import SPEC as MCAR

from epoch_log import EpochLog

REPO = Path(__file__).resolve().parent.parent


def load_handwritten() -> Dataset:
    folder = Path(os.environ.get("MVBENCH_DATA") or REPO.parent / "shared" / "datasets")
    path = folder / "handwritten.mat"
    if not path.exists():
        raise SystemExit(f"handwritten.mat not found in {folder}; set MVBENCH_DATA")
    mat = scipy.io.loadmat(path)
    views = []
    for x in mat["X"].ravel():
        x = np.asarray(x, dtype=np.float64)
        low, span = x.min(axis=0), np.ptp(x, axis=0)
        views.append(((x - low) / np.where(span > 0, span, 1.0)).astype(np.float32))
    labels = mat["Y"].ravel().astype(np.int64) - 1
    return Dataset(name="handwritten", views=views, labels=labels, n_clusters=10,
                   preprocessing=["minmax per view"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    dataset = load_handwritten()
    given = {**SPEC.presets["handwritten"], **dict(split_assignment(s) for s in args.set)}
    options = resolve_options(SPEC.options, given, owner="dimvc-hia")
    print(f"dimvc-hia on handwritten, mcar rate {args.rate}, {args.precision}, "
          f"torch threads {torch.get_num_threads()}, options {options}", flush=True)
    rows = []
    for seed in args.seeds:
        mask = make_mask(dataset, MCAR, {"rate": args.rate}, seed)
        views = [torch.from_numpy(x) for x in blank_missing(dataset.views, mask)]
        inp = MethodInput(views=views, mask=torch.from_numpy(mask), n_clusters=dataset.n_clusters,
                          options=options, seed=seed, device=torch.device("cpu"),
                          precision=args.precision, progress=EpochLog(), dataset_name="handwritten")
        start = time.perf_counter()
        out = SPEC.fit_predict(inp)
        seconds = time.perf_counter() - start
        metrics = evaluate(dataset.labels, out.labels)
        epoch_seconds = {stage: statistics.mean(s) for stage, s in out.extras["epoch_seconds"].items() if s}
        print(f"seed {seed}: incomplete samples {int((~mask.all(1)).sum())}, "
              + " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
              + f" | {seconds:.0f}s, mean epoch seconds "
              + ", ".join(f"{k} {v:.2f}" for k, v in epoch_seconds.items()), flush=True)
        print("view similarity:\n" + np.array2string(np.array(out.extras["view_similarity"]), precision=3))
        rows.append({"seed": seed, "metrics": metrics, "seconds": seconds, "epoch_seconds": epoch_seconds,
                     "extras": out.extras})
    for key in rows[0]["metrics"]:
        values = [r["metrics"][key] for r in rows]
        spread = f" +- {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        print(f"{key}: {statistics.mean(values):.4f}{spread}")
    if args.out:
        args.out.write_text(json.dumps({"rate": args.rate, "precision": args.precision,
                                        "options": {k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in options.items()},
                                        "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
