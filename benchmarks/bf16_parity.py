"""bf16 against fp32 at the methods' own schedules: MFLVC, RAV and DIMVC-HIA on two datasets
each, 3 seeds per precision, through the runner (the same trials a suite would run).

Prints, per (method, dataset): ACC and NMI mean +- std (ddof=1) in fp32 and in bf16, the
difference of the means against the larger seed std (the board rule: bf16 may be used where the
difference stays within the seed std), and the median train-time ratio fp32 / bf16. Records go
to ``--out`` and are resumed. A trial that a suite has already recorded under the same key (the
fp32 rows of ``complete`` and ``incomplete-faithful``) is reused from
``leaderboards/results/*/trials.jsonl``, not rerun. The process claims its whole plan, so a second
copy finds nothing to do: use ``--threads 1`` beside another sweep, or ``--threads 2`` alone.
Time ratios are only meaningful between records made under the same load (the report says where
the records come from); the per-epoch ratios on an idle machine are ``bench_epochs.py``'s.

    python benchmarks/bf16_parity.py --threads 1 [--out leaderboards/results/bf16-parity]
    python benchmarks/bf16_parity.py --report-only
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import torch

from mvbench.device import cpu_has_bf16
from mvbench.estimate import committed_files
from mvbench.registry import get_registry
from mvbench.results import RECORDS_FILE, ok_by_key, read_records
from mvbench.runner import Settings, Trial
from mvbench.sweep import PlannedTrial, SequentialExecutor, SweepTrial, plan, run_sweep, to_run

# (method, dataset, dataset options, mechanism, mechanism options): small datasets, so that the
# 36 faithful trials fit a CPU afternoon.
GRID: tuple[tuple[str, str, dict[str, Any], str, dict[str, Any]], ...] = (
    ("mflvc", "synthetic3d", {}, "none", {}),
    ("mflvc", "msrcv1", {"preprocess": "minmax"}, "none", {}),
    ("rav", "ngs", {}, "none", {}),
    ("rav", "3sources", {}, "none", {}),
    ("dimvc-hia", "msrcv1-missing-0.5", {"preprocess": "minmax"}, "file", {}),
    ("dimvc-hia", "synthetic3d", {}, "mcar", {"rate": 0.5}),
)
PRECISIONS = ("fp32", "bf16")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "leaderboards" / "results" / "bf16-parity"


def trials(seeds: range) -> list[SweepTrial]:
    return [SweepTrial(Trial(method=m, dataset=d, seed=s, missing=mech, dataset_options=dict(opts),
                             missing_options=dict(mopts)), d, mopts.get("rate", 0.0))
            for m, d, opts, mech, mopts in GRID for s in seeds]


def shared_records(out: Path) -> list[dict[str, Any]]:
    """The records of ``--out`` and the committed ones (the files the sweep's time estimate reads):
    keys carry method, version, options, dataset, mask, seed, device kind and precision, so a
    record under a planned key is that very trial."""
    files = {path.resolve(): path for path in (out / RECORDS_FILE, *committed_files())}
    return [record for path in files.values() for record in read_records(path)]


def planned(seeds: range, precision: str, records: list[dict[str, Any]]) -> list[PlannedTrial]:
    return plan(trials(seeds), get_registry(), Settings(device="cpu", precision=precision), records)


def run(out: Path, seeds: range) -> None:
    results = out / RECORDS_FILE
    for precision in PRECISIONS:
        settings = Settings(device="cpu", precision=precision)
        pending = to_run(planned(seeds, precision, shared_records(out)), retry_failed=False)
        print(f"{precision}: {len(pending)} trials to run", flush=True)
        run_sweep(pending, settings, (), SequentialExecutor(), results, suite="bf16-parity",
                  on_record=lambda r: print(f"  {r['method']} {r['dataset']} seed {r['seed']} "
                                            f"{r['precision']}: {r['status']} ACC "
                                            f"{r.get('metrics', {}).get('acc', float('nan')):.4f} "
                                            f"in {r.get('train_time', 0):.0f} s", flush=True))


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def report(out: Path, seeds: range) -> None:
    ok = ok_by_key(shared_records(out))
    keys = {p: {item.key for item in planned(seeds, p, [])} for p in PRECISIONS}
    records = [record for key, record in ok.items() if key in keys["fp32"] | keys["bf16"]]
    sources = sorted({record.get("suite") or "?" for record in records})
    print(f"CPU bf16 native: {cpu_has_bf16()}; records: {out / RECORDS_FILE} and the suites' "
          f"(records from: {', '.join(sources)})")
    print("| method | dataset | ACC fp32 | ACC bf16 | NMI fp32 | NMI bf16 | max abs diff / max seed std "
          "| within std | time fp32/bf16 | n |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method, dataset, *_ in GRID:
        by = {p: [r for r in records if r["method"] == method and r["dataset"] == dataset
                  and r["trial_key"] in keys[p]] for p in PRECISIONS}
        if not all(by.values()):
            print(f"| {method} | {dataset} | (incomplete: {', '.join(f'{p} {len(v)}' for p, v in by.items())}) |")
            continue
        cells, within = [], True
        diffs, stds = [], []
        for metric in ("acc", "nmi"):
            for p in PRECISIONS:
                mean, std = _stats([r["metrics"][metric] for r in by[p]])
                cells.append(f"{mean:.4f} +- {std:.4f}")
            (m32, s32), (m16, s16) = (_stats([r["metrics"][metric] for r in by[p]]) for p in PRECISIONS)
            diffs.append(abs(m32 - m16))
            stds.append(max(s32, s16))
            within &= abs(m32 - m16) <= max(s32, s16)
        ratio = (statistics.median(r["train_time"] for r in by["fp32"])
                 / statistics.median(r["train_time"] for r in by["bf16"]))
        print(f"| {method} | {dataset} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | "
              f"{max(diffs):.4f} / {max(stds):.4f} | {'yes' if within else 'no'} | {ratio:.2f}x | "
              f"{len(by['fp32'])}+{len(by['bf16'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.report_only:
        run(args.out, range(args.seeds))
    report(args.out, range(args.seeds))


if __name__ == "__main__":
    main()
