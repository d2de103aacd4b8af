"""What ``mvbench run`` spends before its first trial, now that it goes through the sweep driver:
reading every committed records file for the time estimate, and loading a dataset (the
driver's preflight loads it once, the sequential executor once more).

Examples::

    python benchmarks/bench_run_startup.py
    MVBENCH_DATA=/work/shared/datasets python benchmarks/bench_run_startup.py --dataset mnist-usps --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from mvbench.estimate import committed_files, finished_times
from mvbench.registry import get_registry
from mvbench.runner import DatasetCache, Trial, resolve


def _median_seconds(job: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="handwritten", help="dataset to load (default: handwritten)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    args = parser.parse_args()

    files = committed_files()
    estimate = _median_seconds(lambda: finished_times(None), args.repeat)
    print(f"time estimate: {estimate * 1000:.0f} ms to read {len(files)} committed records files")

    resolved = resolve(Trial(method="kmeans", dataset=args.dataset, seed=0), get_registry())
    load = _median_seconds(lambda: DatasetCache(None).get(resolved), args.repeat)
    print(f"dataset {resolved.dataset_name}: {load * 1000:.0f} ms per load (a sequential run loads it twice)")


if __name__ == "__main__":
    main()
