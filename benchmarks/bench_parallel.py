"""Wall time of one sweep of seeded trials run in this process, and in the local pool with
1 and 2 (or more) workers.

Each configuration runs the same trials (seeds 0..N-1 of one method on one dataset) through
the executor that ``mvbench sweep`` would use; nothing is written to disk. The table gives the
wall time, the speed-up over the in-process run, the mean training time per trial (which grows
when workers compete for cores or memory bandwidth) and whether every trial's labels match the
in-process run (they can differ where CPU float reductions depend on the thread count).

Examples::

    python benchmarks/bench_parallel.py                       # 16 kmeans trials on handwritten
    python benchmarks/bench_parallel.py --trials 4 --jobs 2   # a quick check
    python benchmarks/bench_parallel.py --method mflvc --set pre_epochs=5 con_epochs=5 tune_epochs=5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from tabulate import tabulate

from mvbench.executors import available_cores, make_executor, worker_threads
from mvbench.options import split_assignment
from mvbench.registry import get_registry
from mvbench.runner import Settings, Trial


def timed_run(name: str, jobs: int | None, trials: Sequence[Trial], settings: Settings,
              plugins: Sequence[str]) -> tuple[float, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    executor = make_executor(name, jobs)
    start = time.perf_counter()
    executor.run(trials, settings, plugins, records.append)
    return time.perf_counter() - start, sorted(records, key=lambda r: r["seed"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="kmeans")
    parser.add_argument("--dataset", default="handwritten")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="method options")
    parser.add_argument("--trials", type=int, default=16, help="seeds 0..N-1 (default 16)")
    parser.add_argument("--jobs", default="1,2", help="pool sizes to time (default 1,2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("-p", "--plugin", action="append", default=[])
    args = parser.parse_args(argv)

    options = dict(split_assignment(item) for item in args.set)
    trials = [Trial(method=args.method, dataset=args.dataset, seed=seed, method_options=options)
              for seed in range(args.trials)]
    settings = Settings(device=args.device, data_dir=args.data_dir)
    runs: list[tuple[str, int | None]] = [("sequential", None)]
    runs += [("pool", int(j)) for j in args.jobs.split(",")]

    get_registry(tuple(args.plugin))  # plugin imports are start-up, not part of any run
    rows = []
    reference: list[str | None] | None = None
    base_wall = None
    for name, jobs in runs:
        wall, records = timed_run(name, jobs, trials, settings, args.plugin)
        failed = [r for r in records if r["status"] != "ok"]
        labels = [r.get("labels_sha256") for r in records]
        reference = reference or labels
        base_wall = base_wall or wall
        rows.append({
            "executor": name if jobs is None else f"pool, {jobs} worker{'s' * (jobs > 1)}",
            "threads/trial": records[0].get("worker", {}).get("torch_threads", torch.get_num_threads()),
            "wall s": f"{wall:.1f}",
            "speed-up": f"{base_wall / wall:.2f}x",
            "train s/trial": f"{statistics.mean(r.get('train_time', float('nan')) for r in records):.2f}",
            "failed": len(failed),
            "labels as in-process": "yes" if labels == reference else
            f"{sum(a == b for a, b in zip(labels, reference))}/{len(labels)}",
        })
        print(f"done: {rows[-1]['executor']} in {wall:.1f} s", flush=True)
    print(f"\n{args.trials} trials of {args.method} on {args.dataset} ({args.device}), "
          f"{available_cores()} cores; pool threads per worker = max(1, cores // workers), "
          f"e.g. {worker_threads(2)} with 2 workers\n")
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
