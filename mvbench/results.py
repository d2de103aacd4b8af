"""Trial records on disk: an append-only JSONL file and summaries written atomically.

A record is written with one ``write`` on an ``O_APPEND`` descriptor and fsynced, so records
finished before a crash or Ctrl-C survive; a torn last line (power loss mid-write) is ignored
when reading and cut off before the next append.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mvbench.metrics import METRICS

RECORDS_FILE = "trials.jsonl"
SUMMARY_FILE = "summary.csv"
STD_DEFINITION = "std = sample standard deviation over seeds (ddof=1); empty when n_seeds = 1"


def _repair_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        handle.truncate(data.rfind(b"\n") + 1)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _repair_torn_tail(path)
    line = (json.dumps(record, default=_jsonable, allow_nan=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: Path) -> list[dict[str, Any]]:
    """All complete records of a JSONL file (a torn final line is skipped)."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            records.append(json.loads(line))
    return records


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def options_label(options: dict[str, Any]) -> str:
    """A compact, order-independent text for a set of option values."""
    return ",".join(f"{k}={options[k]}" for k in sorted(options))


GROUP_COLUMNS = ("dataset", "missing", "missing_params", "method", "option_set")


def flat_rows(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial with the columns a summary needs."""
    rows = []
    for r in records:
        rows.append({
            "dataset": r["dataset"], "missing": r["missing"],
            "missing_params": options_label(r.get("missing_options", {})),
            "method": r["method"], "option_set": r.get("option_set") or "default",
            "seed": r["seed"], "status": r["status"],
            **{m: r.get("metrics", {}).get(m, math.nan) for m in METRICS},
            "train_time": r.get("train_time", math.nan), "wall_time": r.get("wall_time", math.nan),
            "error": r.get("error", ""),
        })
    return pd.DataFrame(rows, columns=[*GROUP_COLUMNS, "seed", "status", *METRICS,
                                       "train_time", "wall_time", "error"])


def aggregate(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Mean and std (ddof=1) of every metric and the train time over the ok seeds of each group."""
    flat = flat_rows(records)
    ok = flat[flat["status"] == "ok"]
    columns = [*METRICS, "train_time"]
    if ok.empty:
        return pd.DataFrame(columns=[*GROUP_COLUMNS, "n_seeds",
                                     *[f"{c}_{s}" for c in columns for s in ("mean", "std")]])
    grouped = ok.groupby(list(GROUP_COLUMNS), sort=False)
    out = grouped.size().rename("n_seeds").to_frame()
    for c in columns:
        out[f"{c}_mean"] = grouped[c].mean()
        out[f"{c}_std"] = grouped[c].std(ddof=1)
    return out.reset_index()


def write_summary(out_dir: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write the per-group mean +- std CSV next to the records."""
    path = out_dir / SUMMARY_FILE
    table = aggregate(records)
    header = f"# {STD_DEFINITION}\n"
    write_atomic(path, header + table.to_csv(index=False, float_format="%.6g"))
    return path
