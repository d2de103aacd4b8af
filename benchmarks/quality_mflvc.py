"""Quality check of MFLVC with its faithful defaults on MNIST-USPS (target ACC >= 0.95).

Reads ``MNIST_USPS.mat`` (X1, X2: N x 784 in [0, 1], Y 0-based) from ``$MVBENCH_DATA`` or
``../shared/datasets``, runs ``fit_predict`` per seed, logs each epoch's loss and prints
ACC / NMI / ARI / PUR and the seconds per epoch of every stage; ``--out`` saves them as JSON.

    nohup python benchmarks/quality_mflvc.py --seeds 0 --out /tmp/mflvc_mnist.json > /tmp/mflvc.log &
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from mvbench.device import resolve_device
from mvbench.metrics import evaluate
from mvbench.options import resolve_options, split_assignment
from mvbench.data.pathdataset import dataset_from_path
from mvbench.seeding import seed_everything
from mvbench.specs import MethodInput
from mvbench_plugins.methods import mflvc

from epoch_log import EpochLog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    root = Path(os.environ.get("MVBENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    dataset = dataset_from_path(root / "MNIST_USPS.mat", {"views": "X1,X2", "labels": "Y"})
    device = resolve_device(args.device)
    options = resolve_options(mflvc.SPEC.options, {**mflvc.PRESETS["mnist-usps"],
                                                   **dict(map(split_assignment, args.set))})
    print(f"MNIST-USPS N={dataset.n_samples} dims={dataset.dims} K={dataset.n_clusters}; {options}", flush=True)
    results = []
    for seed in args.seeds:
        seed_everything(seed)
        start = time.perf_counter()
        out = mflvc.fit_predict(MethodInput(
            views=[torch.as_tensor(x, device=device) for x in dataset.views],
            mask=torch.ones(dataset.n_samples, dataset.n_views, dtype=torch.bool, device=device),
            n_clusters=dataset.n_clusters, options=options, seed=seed, device=device,
            precision=args.precision, progress=EpochLog(), dataset_name="mnist-usps",
        ))
        metrics = evaluate(dataset.labels, out.labels)
        seconds = {stage: statistics.median(v) for stage, v in out.extras["epoch_seconds"].items()}
        result = {"seed": seed, "metrics": metrics, "total_seconds": time.perf_counter() - start,
                  "median_epoch_seconds": seconds, "epoch_seconds": out.extras["epoch_seconds"],
                  "loss_history": out.extras["loss_history"]}
        results.append(result)
        print(json.dumps({k: result[k] for k in ("seed", "metrics", "total_seconds", "median_epoch_seconds")}),
              flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps({"options": options, "results": results}, indent=1, default=list))


if __name__ == "__main__":
    main()
