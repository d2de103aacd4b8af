"""The trial record: its fields, their types, its schema version, and the migration of records
written by older versions of mvbench.

A record is one JSON object per line of ``trials.jsonl``, built by the runner
(:func:`mvbench.runner.base_record` and :func:`mvbench.runner.run_resolved`); every reader
(leaderboards, the reproduction report, resume) gets records through
:func:`mvbench.results.read_records`, which migrates each one to the current schema, so readers
only ever see :data:`SCHEMA_VERSION`.

Schema history:
  1. (no ``schema_version`` field) records before method versions, variants and degeneracy flags.
  2. adds ``schema_version``, ``method_version`` (1 for schema-1 records: every method was then at
     its version 1), ``variant`` (None) and ``degenerate`` (a list of reasons; schema-1 records
     were never checked, so None = unknown).
"""

from __future__ import annotations

from typing import Any, TypedDict

from mvbench.errors import MvbenchError

SCHEMA_VERSION = 2


class TrialRecord(TypedDict, total=False):
    """The fields of a record (``total=False``: a failed trial lacks the result fields)."""

    schema_version: int
    trial_key: str
    status: str  # "ok" or "failed"
    error: str
    traceback: str
    suite: str | None
    # What the trial was.
    method: str
    method_version: int
    variant: str | None
    option_set: str | None
    method_options: dict[str, Any]
    preset: dict[str, Any]
    dataset: str
    dataset_options: dict[str, Any]
    missing: str
    missing_options: dict[str, Any]
    seed: int
    fill: str | None
    dataset_default_missing: str  # only for a dataset that ships its own missing-view pattern
    # Where and how it ran.
    device: str
    device_name: str
    precision: str
    versions: dict[str, Any]
    started_at: str
    # What it found.
    n_samples: int
    n_views: int
    n_clusters: int
    preprocessing: list[str]
    missing_definition: str
    fill_definition: str | None
    incomplete_fraction: float
    missing_per_view: list[float]
    metrics: dict[str, float]
    metric_definitions: dict[str, str]
    n_predicted_clusters: int
    cluster_sizes: list[int]  # largest first; absent in records made before boards re-checked them
    labels_sha256: str
    degenerate: list[str] | None
    extras: dict[str, Any]
    train_time: float  # of every process that trained the trial, when it resumed from snapshots
    wall_time: float
    resumed: dict[str, Any]  # only for a trial resumed from snapshots: {"from": [...], "earlier_seconds"}
    peak_rss_mb: float
    peak_gpu_mb: float
    peak_gpu_reserved_mb: float
    worker: dict[str, Any]  # how a pool or Ray worker ended a trial it did not finish


def migrate(record: dict[str, Any]) -> TrialRecord:
    """The record in the current schema (a new dict; the input is not modified)."""
    version = record.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise MvbenchError(f"a record has schema_version {version!r}, newer than this mvbench "
                           f"understands ({SCHEMA_VERSION}); upgrade mvbench to read it")
    out = dict(record)
    if version < 2:
        out.setdefault("method_version", 1)
        out.setdefault("variant", None)
        out.setdefault("degenerate", None)
    out["schema_version"] = SCHEMA_VERSION
    return out  # type: ignore[return-value]
