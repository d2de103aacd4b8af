"""Results files shared by several processes: a lock for appends, and claims on trials.

Two sweeps may write one records file at once (two terminals, or a pool and a second run). Every
append holds an exclusive ``flock`` on ``<records>.lock``, so no line is torn by another writer and
the torn-tail repair never cuts a line that another process is writing. Before running, a driver
claims the trials it is about to run in ``<records>.claims`` (one JSON line per claim, under the
same lock); a trial that another live process has claimed, or that is already recorded, is left to
it, so no trial is run twice. Claims of a process that has ended (same host, pid gone) are stale
and retaken; a driver drops its own claims when it finishes or is interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterable, Iterator
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


def claim(records: Path, keys: Iterable[str], recorded: Iterable[str] = ()) -> tuple[set[str], set[str]]:
    """Claim ``keys`` for this process. Returns (claimed by us, held by another live process);
    keys in ``recorded`` (finished meanwhile) are neither."""
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    path = _claims_path(records)
    with locked(records):
        live = [c for c in _read_claims(path) if _alive(c) and (c["pid"], c["host"]) != (me["pid"], me["host"])]
        taken = {c["key"] for c in live}
        done = set(recorded)
        wanted = [k for k in keys if k not in taken and k not in done]
        _write_claims(path, live + [{"key": k, **me} for k in wanted])
    return set(wanted), {k for k in keys if k in taken}


def release(records: Path) -> None:
    """Drop every claim of this process (and stale ones)."""
    me = (os.getpid(), socket.gethostname())
    path = _claims_path(records)
    if not path.exists():
        return
    with locked(records):
        kept = [c for c in _read_claims(path) if _alive(c) and (c["pid"], c["host"]) != me]
        if kept:
            _write_claims(path, kept)
        else:
            path.unlink(missing_ok=True)
