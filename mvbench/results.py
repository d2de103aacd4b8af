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
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mvbench.claims import locked
from mvbench.metrics import METRICS
from mvbench.records import migrate

RECORDS_FILE = "trials.jsonl"
SUMMARY_FILE = "summary.csv"
SUMMARY_META_FILE = "summary.meta.json"
STD_DEFINITION = "std = sample standard deviation over seeds (ddof=1); empty when n_seeds = 1"
# A record may carry the trial's outputs under this key (``--save-labels``): the predicted labels
# and, when the method returns them, its final features. They are saved as .npy files in
# LABELS_DIR beside the records file, never written into the JSON line.
OUTPUTS_KEY = "_outputs"
LABELS_DIR = "labels"


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
    """Append one record as a JSON line, durably, holding the file's lock against other writers.
    Outputs the record carries (``OUTPUTS_KEY``) are saved beside the file first and the record
    names them (``labels_file``, ``features_file``)."""
    outputs = record.pop(OUTPUTS_KEY, None)
    if outputs:
        record.update(save_outputs(path.parent, record, outputs))
    line = (json.dumps(record, default=_jsonable, allow_nan=True) + "\n").encode()
    with locked(path):
        _repair_torn_tail(path)
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
            records.append(migrate(json.loads(line)))
    return records


def latest_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per trial key: the last ok one, else the last failed one."""
    by_key: dict[str, Mapping[str, Any]] = {}
    unkeyed = []
    for record in records:
        key = record.get("trial_key")
        if key is None:
            unkeyed.append(record)
        elif record.get("status") == "ok" or by_key.get(key, {}).get("status") != "ok":
            by_key[key] = record
    return [*by_key.values(), *unkeyed]


def ok_by_key(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last ok record of each trial key."""
    return {r["trial_key"]: dict(r) for r in latest_records(records) if r.get("status") == "ok" and "trial_key" in r}


def save_outputs(folder: Path, record: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, str]:
    """Save a trial's outputs as ``labels/<trial_key>-seed<k>.npy`` (the labels) and
    ``labels/<trial_key>-seed<k>.<name>.npy`` (e.g. ``features``) under ``folder``; returns the
    record fields that name them (``labels_file``, ``features_file``), relative to ``folder``."""
    stem = f"{record['trial_key']}-seed{record['seed']}"
    fields = {}
    for name, array in outputs.items():
        relative = f"{LABELS_DIR}/{stem}.npy" if name == "labels" else f"{LABELS_DIR}/{stem}.{name}.npy"
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        write_atomic(folder / relative, buffer.getvalue())
        fields[f"{name}_file"] = relative
    return fields


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
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
    """Mean and std (ddof=1) of every metric and the train time over the ok seeds of each group,
    each trial counted once (its last ok record)."""
    flat = flat_rows(latest_records(records))
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
    """Write the per-group mean +- std as a plain CSV next to the records, and what its columns
    mean to the sidecar ``summary.meta.json``."""
    path = out_dir / SUMMARY_FILE
    write_atomic(path, aggregate(records).to_csv(index=False, float_format="%.6g"))
    meta = {
        "summary": SUMMARY_FILE, "records": RECORDS_FILE, "std": STD_DEFINITION,
        "counted": "each trial (trial_key) once, by its last ok record; failed trials are not counted",
        "n_seeds": "trials (seeds) counted in the group",
        "train_time": "seconds spent in the method's fit_predict (data loading and masking excluded)",
    }
    write_atomic(out_dir / SUMMARY_META_FILE, json.dumps(meta, indent=2) + "\n")
    return path
