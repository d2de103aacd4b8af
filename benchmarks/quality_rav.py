"""Quality check of RAV on NGs, 3Sources and Cora (targets: NGs ACC >= .95, 3Sources
NMI >= .55, Cora ACC >= .55; published: NGs ACC .980, 3Sources NMI .599, Cora ACC .592).

Loads the datasets through mvbench's registry (files from ``$MVBENCH_DATA`` or
``../shared/datasets``, preprocessing as the registry's default), runs ``fit_predict`` per seed
and prints per-seed and mean +- std (sample std, ddof=1) ACC / NMI / ARI / PUR, the last-epoch
view weights W and the mean off-diagonal entry of S^v (near 0 = the kernel is the identity).
``--noise-check`` instead trains on a synthetic 3-view set whose last view is pure noise and
prints each view's weight (the noise view should get the lowest).

    nohup python benchmarks/quality_rav.py --datasets ngs 3sources --seeds 0 1 2 3 4 \\
        --out /tmp/rav_quality.json > /tmp/rav_quality.log &
    python benchmarks/quality_rav.py --noise-check --set pre_epochs=50 epochs=50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvbench.device import resolve_device
from mvbench.metrics import evaluate
from mvbench.options import resolve_options, split_assignment
from mvbench.registry import build_registry
from mvbench.seeding import seed_everything
from mvbench.specs import Dataset, MethodInput
from mvbench_plugins.methods import rav

from epoch_log import EpochLog


def noise_dataset(seed: int = 0, n: int = 600, k: int = 4) -> Dataset:
    """Two informative views (class centres + noise) and a third view of pure noise, each
    feature standardised: the noise view must not be told apart by its scale alone."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    informative = [(rng.normal(size=(k, 50)) * 3.0)[y] + rng.normal(size=(n, 50)) for _ in range(2)]
    views = [((x - x.mean(0)) / x.std(0)).astype(np.float32) for x in [*informative, rng.normal(size=(n, 50))]]
    return Dataset(name="noise-view", views=views, labels=y.astype(np.int64), n_clusters=k)


def run(dataset: Dataset, options: dict[str, Any], seed: int, device: torch.device, precision: str):
    seed_everything(seed)
    start = time.perf_counter()
    out = rav.fit_predict(MethodInput(
        views=[torch.as_tensor(x, device=device) for x in dataset.views],
        mask=torch.ones(dataset.n_samples, dataset.n_views, dtype=torch.bool, device=device),
        n_clusters=dataset.n_clusters, options=options, seed=seed, device=device,
        precision=precision, progress=EpochLog(25), dataset_name=dataset.name,
    ))
    train = out.extras["loss_history"].get("train", {})
    return {
        "seed": seed,
        "metrics": evaluate(dataset.labels, out.labels),
        "seconds": time.perf_counter() - start,
        "median_epoch_seconds": {s: statistics.median(v) for s, v in out.extras["epoch_seconds"].items() if v},
        "view_weights": out.extras["view_weights"],
        "view_weight_per_view": out.extras["view_weight_per_view"],
        "s_offdiag_last": train["s_offdiag"][-1] if "s_offdiag" in train else None,
        "final_losses": {name: values[-1] for name, values in train.items()},
    }


def summary(results: list[dict[str, Any]]) -> str:
    parts = []
    for metric in ("acc", "nmi", "ari", "pur"):
        values = [r["metrics"][metric] for r in results]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        parts.append(f"{metric.upper()} {statistics.mean(values):.4f} +- {std:.4f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ngs", "3sources", "cora"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--noise-check", action="store_true", help="the synthetic noise-view check only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = resolve_device(args.device)
    options = resolve_options(rav.OPTIONS, dict(map(split_assignment, args.set)), owner="rav")
    print(f"options: {options}", flush=True)
    if args.noise_check:
        datasets = [noise_dataset()]
    else:
        root = os.environ.get("MVBENCH_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
        registry = build_registry()
        datasets = []
        for name in args.datasets:
            spec = registry.dataset(name)
            datasets.append(spec.load(resolve_options(spec.options, {}), root))

    report: dict[str, Any] = {"options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}}
    for dataset in datasets:
        print(f"== {dataset.name}: N={dataset.n_samples} dims={dataset.dims} K={dataset.n_clusters}", flush=True)
        results = []
        for seed in args.seeds:
            result = run(dataset, options, seed, device, args.precision)
            results.append(result)
            m = result["metrics"]
            weights = result["view_weight_per_view"]
            print(f"  seed {seed}: ACC {m['acc']:.4f} NMI {m['nmi']:.4f} ARI {m['ari']:.4f} PUR {m['pur']:.4f} "
                  f"({result['seconds']:.0f}s; per-epoch {result['median_epoch_seconds']}) "
                  f"view weights {None if weights is None else [round(w, 4) for w in weights]} "
                  f"S^v off-diagonal mean {result['s_offdiag_last']}", flush=True)
            print(f"    W = {result['view_weights']}", flush=True)
            print(f"    final losses {result['final_losses']}", flush=True)
        print(f"  {dataset.name}: {summary(results)} over {len(results)} seeds", flush=True)
        report[dataset.name] = results
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
