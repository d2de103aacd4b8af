"""Results files shared by several processes: a lock for appends, and claims on trials.

Two sweeps may write one records file at once (two terminals, or a pool and a second run). Every
append holds an exclusive ``flock`` on ``<records>.lock``, so no line is torn by another writer and
the torn-tail repair never cuts a line that another process is writing. A driver claims each trial
in ``<records>.claims`` (one JSON line per claim, under the same lock) just before the trial starts,
not all of them up front, so two sweeps of one grid share its trials out as they go: a trial that
another live process has claimed, or that was recorded meanwhile, is left to it, and no trial is
run twice. Claims of a process that has ended (same host, pid gone) are stale and retaken; a driver
drops its own claims when it finishes or is interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def locked(records: Path) -> Iterator[None]:
    """Hold the records file's exclusive lock (blocking) for the duration of the block."""
    records.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(records.with_name(records.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _claims_path(records: Path) -> Path:
    return records.with_name(records.name + ".claims")


def _alive(claim: dict) -> bool:
    if claim.get("host") != socket.gethostname():
        return True  # another machine's process cannot be checked from here: respect its claim
    try:
        os.kill(int(claim["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_claims(path: Path) -> list[dict]:
    if not path.exists():
        return []
    claims = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            claims.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash: ignore it
    return claims


def _write_claims(path: Path, claims: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    os.replace(tmp, path)


def _mine(claim: dict) -> bool:
    return (claim["pid"], claim["host"]) == (os.getpid(), socket.gethostname())


def claim_one(records: Path, key: str, recorded_meanwhile: Callable[[str], bool] = lambda key: False) -> bool:
    """Claim ``key`` for this process just before its trial starts; False when another live
    process holds it or ``recorded_meanwhile(key)`` says a record of it has appeared. The check
    runs under the lock that appends hold, so a record cannot land between check and claim."""
    path = _claims_path(records)
    with locked(records):
        live = [c for c in _read_claims(path) if _alive(c)]
        holders = [c for c in live if c["key"] == key]
        if any(_mine(c) for c in holders):
            return True
        if holders or recorded_meanwhile(key):
            return False
        _write_claims(path, live + [{"key": key, "pid": os.getpid(), "host": socket.gethostname()}])
    return True


def held_by_others(records: Path, keys: Iterable[str]) -> set[str]:
    """The ``keys`` that another live process has claimed now."""
    path = _claims_path(records)
    if not path.exists():
        return set()  # nothing to read, and a dry run must not create the results folder
    with locked(records):
        taken = {c["key"] for c in _read_claims(path) if not _mine(c) and _alive(c)}
    return {k for k in keys if k in taken}


def release(records: Path) -> None:
    """Drop every claim of this process (and stale ones)."""
    path = _claims_path(records)
    if not path.exists():
        return
    with locked(records):
        kept = [c for c in _read_claims(path) if _alive(c) and not _mine(c)]
        if kept:
            _write_claims(path, kept)
        else:
            path.unlink(missing_ok=True)
