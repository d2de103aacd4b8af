"""What a worker runs: one trial, from the plugin list to its record.

A worker (a pool process or a Ray task) builds its own registry from the plugin list, resolves
and runs the trial, and returns the record. It never writes the results file: only the driver
does, so workers on other machines need no access to it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import torch

from mvbench.determinism import configure_cublas
from mvbench.registry import get_registry
from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved

configure_cublas()  # a Ray worker does not inherit the driver's environment


def run_trial(trial: Trial, settings: Settings, plugins: Sequence[str], threads: int | None = None,
              cache: DatasetCache | None = None) -> dict[str, Any]:
    """Run ``trial`` in this process and return its record (a failed trial is a record too)."""
    if threads:
        torch.set_num_threads(threads)
    resolved = resolve(trial, get_registry(tuple(plugins)))
    record = run_resolved(resolved, settings, cache or DatasetCache(settings.data_dir))
    record["worker"] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "torch_threads": torch.get_num_threads(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    return record


def pool_worker(conn: Connection, plugins: Sequence[str], threads: int, gpu: str | None = None) -> None:
    """Entry point of a pool process: receives ``(trial, settings)`` tasks until ``None`` and
    answers each with ``("ok", record)`` or ``("error", message)``.

    ``gpu`` is the device the pool gave this worker (its ``CUDA_VISIBLE_DEVICES``); when CUDA
    sees no device there, every trial fails with that message rather than running on the CPU.
    If the process dies mid-trial (a segfault, ``os._exit``, the OOM killer), the driver sees
    the pipe close without an answer and records that trial as failed."""
    caches: dict[str | None, DatasetCache] = {}
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the driver is gone (killed): nobody is left to run trials for
            break
        if task is None:
            break
        trial, settings = task
        cache = caches.setdefault(settings.data_dir, DatasetCache(settings.data_dir))
        message: tuple[str, Any]
        if gpu is not None and not torch.cuda.is_available():
            message = ("error", f"the worker given GPU {gpu} (CUDA_VISIBLE_DEVICES={gpu}) sees no CUDA "
                                f"device; check that GPU, or drop --gpus to run on the CPU")
        else:
            try:
                message = ("ok", run_trial(trial, settings, plugins, threads, cache))
            except Exception as exc:  # e.g. a plugin missing here: report it, the driver records it
                message = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(message)
        except Exception as exc:  # a record the method filled with something unpicklable
            conn.send(("error", f"the trial's record could not be sent to the driver: "
                                f"{type(exc).__name__}: {exc}"))
    conn.close()
