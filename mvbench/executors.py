"""Executors that run trials in parallel: a local pool of spawned processes with GPU slots,
and Ray tasks for clusters.

Workers only return records (see :mod:`mvbench.worker`); the driver hands each one to
``on_record``, which writes it, so resume works exactly as in sequential runs. A worker that
dies mid-trial (segfault, ``os._exit``, out of memory) becomes a failed record naming how it
died, and the other trials go on. On Ctrl-C, running workers are stopped and the records of
finished trials are already written.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.util import find_spec
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import torch

from mvbench.device import resolve_device
from mvbench.errors import MvbenchError, unknown_name
from mvbench.registry import ENV_VAR, get_registry
from mvbench.runner import DatasetCache, ResolvedTrial, Settings, Trial, base_record, resolve
from mvbench.specs import Progress
from mvbench.sweep import Executor, SequentialExecutor, take_every
from mvbench.worker import pool_worker, run_trial

EXECUTOR_NAMES = ("sequential", "pool", "ray")
RAY_INSTALL = "pip install 'mvbench[ray]'"
# How long a worker that already sent its record, or was told to stop, may take to exit.
EXIT_GRACE_SECONDS = 10.0

OnRecord = Callable[[dict[str, Any]], None]


# --- pure helpers -------------------------------------------------------------------------

def parse_gpus(text: str) -> list[str]:
    """``0,1`` -> ["0", "1"]; GPU UUIDs (``GPU-...``, ``MIG-...``) are accepted as well."""
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not gpus or any(not re.fullmatch(r"[A-Za-z0-9:_-]+", g) for g in gpus) or len(set(gpus)) != len(gpus):
        raise MvbenchError(f"--gpus {text!r} must be distinct GPU indices (or UUIDs) separated by "
                           f"commas, e.g. --gpus 0,1")
    return gpus


def available_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_threads(jobs: int, cores: int | None = None, driver_threads: int | None = None) -> int:
    """Torch (and OpenMP) threads per worker: a fair share of the cores, so N workers do not
    oversubscribe them, and never more than the driver uses (a suite that pins its thread
    count, because CPU float reductions depend on it, keeps that count in the workers)."""
    share = max(1, (cores or available_cores()) // jobs)
    return min(share, driver_threads or torch.get_num_threads())


class GpuSlots:
    """``per_gpu`` trials share each GPU; a new trial gets the least busy GPU (the first
    listed on a tie), so trials spread over the GPUs before they double up."""

    def __init__(self, gpus: Sequence[str], per_gpu: int) -> None:
        self.per_gpu = per_gpu
        self.busy: dict[str, int] = dict.fromkeys(gpus, 0)

    @property
    def capacity(self) -> int:
        return len(self.busy) * self.per_gpu

    def acquire(self) -> str:
        gpu = min(self.busy, key=self.busy.__getitem__)
        if self.busy[gpu] >= self.per_gpu:
            raise RuntimeError("all GPU slots are taken")  # the pool never runs more jobs than slots
        self.busy[gpu] += 1
        return gpu

    def release(self, gpu: str) -> None:
        self.busy[gpu] -= 1


def visible_gpus(requested: Sequence[str]) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each ``--gpus`` entry: index i is the i-th device
    this process sees, i.e. the i-th entry of its own ``CUDA_VISIBLE_DEVICES`` (a scheduler's
    allocation) or physical GPU i when that is unset; a UUID (``GPU-...``, ``MIG-...``) names
    its device directly. An index beyond the visible devices is a one-line error."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise MvbenchError(f"--gpus {','.join(requested)}: no CUDA device is visible here; drop --gpus "
                           f"to run on the CPU, or check the driver and CUDA_VISIBLE_DEVICES")
    parent = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = ([e.strip() for e in parent.split(",")][:count] if parent is not None
               else [str(i) for i in range(count)])
    mapped = []
    for gpu in requested:
        if not gpu.isdigit():
            mapped.append(gpu)
        elif int(gpu) < count:
            mapped.append(entries[int(gpu)])
        else:
            seen = f" (CUDA_VISIBLE_DEVICES={parent})" if parent is not None else ""
            raise MvbenchError(f"--gpus {gpu}: this machine shows {count} CUDA device(s){seen}, so the "
                               f"indices are 0..{count - 1}; choose among them")
    return mapped


def ray_task_options(trials_per_gpu: int | None, cuda: bool = False) -> dict[str, Any]:
    """Ray resources of one trial: a CPU, and 1/K of a GPU (K = ``trials_per_gpu``, default 1)
    when the trials run on CUDA or K is given: Ray hides the GPUs from a task that does not ask
    for one. A GPU trial gets a fresh worker process (max_calls=1): Ray offers no way to retire
    a worker whose CUDA context a failed trial left broken, so it is not reused."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
    if trials_per_gpu or cuda:
        options.update(num_gpus=1 / (trials_per_gpu or 1), max_calls=1)
    return options


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def worker_plugins(plugins: Sequence[str]) -> tuple[str, ...]:
    """The -p plugins plus those of $MVBENCH_PLUGINS, so workers whose environment lacks the
    variable (Ray workers on other machines) still load them."""
    from_env = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    return tuple(dict.fromkeys([*from_env, *plugins]))


def failed_record(resolved: ResolvedTrial, settings: Settings, error: str) -> dict[str, Any]:
    """The record of a trial whose worker returned nothing; keyed like the record the worker
    would have written, so the sweep sees the trial as failed (and retries it on request)."""
    record = base_record(resolved, resolve_device(settings.device), settings.precision)
    record["error"] = error
    return record


def _resolve_all(trials: Sequence[Trial], plugins: Sequence[str]) -> list[ResolvedTrial]:
    # In the driver first, so a typo fails before any worker starts.
    registry = get_registry(tuple(plugins))
    return [resolve(trial, registry) for trial in trials]


# --- local pool ---------------------------------------------------------------------------

@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    gpu: str | None
    trial: int | None = None  # the index of the trial it is running; None when idle


@contextlib.contextmanager
def _spawn_environment(env: Mapping[str, str]) -> Iterator[None]:
    """A spawned child starts with the driver's environment and ignored signals: this sets
    CUDA_VISIBLE_DEVICES and thread counts before the child's Python (let alone CUDA) starts,
    and makes the child ignore SIGINT, so that on Ctrl-C the driver alone decides what stops.
    (A Ctrl-C during the few milliseconds of a spawn is lost.)"""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalPoolExecutor:
    """Runs trials in up to ``jobs`` spawned worker processes, one trial per process at a time.

    Workers are reused between trials, which saves the seconds of start-up (importing torch
    and the plugins, starting CUDA) per trial and loads each dataset once, as the sequential
    runner does. A GPU worker is retired after a failed trial, since a CUDA error can leave its
    context unusable; the runner releases the CUDA cache before each trial, so a trial's peak
    reserved memory is its own. ``--gpus`` entries are mapped to this process's visible
    devices (:func:`visible_gpus`), and a GPU worker that finds no CUDA device fails its
    trials instead of running them on the CPU. Workers are managed one by one rather than
    through a ProcessPoolExecutor, whose crash (BrokenProcessPool) fails every running trial
    without saying which one died; here a dead worker fails exactly the trial it was running,
    and a new worker takes its place."""

    def __init__(self, jobs: int, gpus: Sequence[str] = (), trials_per_gpu: int = 1) -> None:
        self.jobs = jobs
        self.gpus = tuple(gpus)
        self.trials_per_gpu = trials_per_gpu

    def run(self, trials: Sequence[Trial], settings: Settings, plugins: Sequence[str],
            on_record: OnRecord, *, take: Callable[[int], bool] = take_every,
            datasets: DatasetCache | None = None) -> None:
        # ``datasets`` is not used: the trials run in other processes, which load their own.
        if self.gpus and settings.device not in ("auto", "cuda"):
            raise MvbenchError(f"--gpus gives each worker one of the listed GPUs as cuda:0; use "
                               f"--device cuda or auto, not {settings.device!r}")
        gpus = visible_gpus(self.gpus) if self.gpus else []
        resolved = _resolve_all(trials, plugins)
        accelerated = bool(gpus) or resolve_device(settings.device).type != "cpu"
        slots = GpuSlots(gpus, self.trials_per_gpu) if gpus else None
        jobs = min(self.jobs, slots.capacity) if slots else self.jobs
        spawn = _Spawner(worker_plugins(plugins), worker_threads(jobs))
        pending = deque(range(len(trials)))
        workers: list[_Worker] = []

        def retire(worker: _Worker, *, died: bool = False) -> None:
            workers.remove(worker)
            _shut_down(worker, ask=not died)
            if slots and worker.gpu is not None:
                slots.release(worker.gpu)

        try:
            while pending or any(w.trial is not None for w in workers):
                while pending:
                    worker = next((w for w in workers if w.trial is None), None)
                    if worker is None and len(workers) >= jobs:
                        break
                    if not take(pending[0]):  # asked only once a worker is free to start it
                        pending.popleft()
                        continue
                    new = worker is None
                    if worker is None:
                        worker = spawn(slots.acquire() if slots else None)
                        workers.append(worker)
                    try:
                        worker.conn.send((trials[pending[0]], settings))
                    except OSError:
                        retire(worker, died=True)
                        if new:  # a worker that cannot even start fails the trial, not the loop
                            index = pending.popleft()
                            on_record(failed_record(resolved[index], settings, _death(worker)))
                        continue  # an idle worker died between trials: a new one takes over
                    worker.trial = pending.popleft()
                busy = {w.conn: w for w in workers if w.trial is not None}
                for conn in wait(list(busy)):
                    worker = busy[conn]
                    index, worker.trial = worker.trial, None
                    record, died = _receive(worker, resolved[index], settings)
                    if died or (accelerated and record.get("status") != "ok"):
                        retire(worker, died=died)
                    on_record(record)
            for worker in list(workers):
                retire(worker)
        finally:
            _stop(workers)


@dataclass
class _Spawner:
    plugins: tuple[str, ...]
    threads: int

    def __call__(self, gpu: str | None) -> _Worker:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        context = mp.get_context("spawn")
        driver_end, worker_end = context.Pipe()
        process = context.Process(target=pool_worker, args=(worker_end, self.plugins, self.threads, gpu),
                                  name="mvbench-worker")
        with _spawn_environment(env):
            process.start()
        # Only the worker holds its end now, so the worker's death closes the pipe.
        worker_end.close()
        return _Worker(process, driver_end, gpu)


def _death(worker: _Worker) -> str:
    worker.process.join(EXIT_GRACE_SECONDS)
    return (f"the worker process {describe_exit(worker.process.exitcode)} during this trial "
            f"(a crash, out of memory, or os._exit in the method)")


def _receive(worker: _Worker, resolved: ResolvedTrial,
             settings: Settings) -> tuple[dict[str, Any], bool]:
    """The record the worker sent, or a failed record when its pipe closed without one;
    and whether the worker died."""
    try:
        status, payload = worker.conn.recv()
    except (EOFError, OSError):
        return failed_record(resolved, settings, _death(worker)), True
    return (payload if status == "ok" else failed_record(resolved, settings, payload)), False


def _shut_down(worker: _Worker, *, ask: bool) -> None:
    """Let the worker finish its loop (``ask``), or just reap it; kill it if it hangs."""
    if ask:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
    worker.process.join(EXIT_GRACE_SECONDS)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    worker.conn.close()


def _stop(workers: Sequence[_Worker]) -> None:
    """Stop workers now (Ctrl-C or an error in the driver); their trials are not recorded."""
    for worker in workers:
        worker.process.terminate()
    for worker in workers:
        _shut_down(worker, ask=False)


# --- Ray ----------------------------------------------------------------------------------

def require_ray() -> Any:
    """Import Ray, or explain how to install it."""
    if find_spec("ray") is None:
        raise MvbenchError(f"--executor ray needs Ray, which is not installed; install it with: "
                           f"{RAY_INSTALL}")
    import ray

    return ray


def _ray_error(exc: Exception) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):  # an exception raised in the task itself
        return f"{type(cause).__name__}: {cause}"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"Ray: {type(exc).__name__}: {first_line}"


class RayExecutor:
    """Submits each trial as a Ray task with its CPU and (fractional) GPU resources.

    ``address`` None starts a local Ray instance for this run (or joins $RAY_ADDRESS);
    ``auto`` or HOST:PORT joins a running cluster. ``jobs`` caps the trials in flight (by
    default Ray queues them all and schedules by resources)."""

    def __init__(self, address: str | None = None, jobs: int | None = None,
                 trials_per_gpu: int | None = None) -> None:
        self.address = address
        self.jobs = jobs
        self.trials_per_gpu = trials_per_gpu

    def run(self, trials: Sequence[Trial], settings: Settings, plugins: Sequence[str],
            on_record: OnRecord, *, take: Callable[[int], bool] = take_every,
            datasets: DatasetCache | None = None) -> None:
        # ``datasets`` is not used: the trials run in other processes, which load their own.
        ray = require_ray()
        device = resolve_device(settings.device)
        if device.type == "cuda":
            if device.index not in (None, 0):
                raise MvbenchError(f"with --executor ray each trial sees the GPU Ray gives it as cuda:0; "
                                   f"use --device cuda, not {settings.device!r}")
            settings = replace(settings, device="cuda")  # a worker without CUDA fails, never runs on CPU
        resolved = _resolve_all(trials, plugins)
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(**({"address": self.address} if self.address else {"include_dashboard": False}))
            except ConnectionError as exc:
                raise MvbenchError(f"cannot reach the Ray cluster at {self.address or 'auto'} "
                                   f"({str(exc).strip().rstrip('.')}); "
                                   f"start it with 'ray start --head' or check --address") from None
        task = ray.remote(run_trial).options(**ray_task_options(self.trials_per_gpu, device.type == "cuda"))
        args = (settings, worker_plugins(plugins), 1)  # one declared CPU, one torch thread
        pending = deque(range(len(trials)))
        in_flight: dict[Any, int] = {}
        try:
            while pending or in_flight:
                while pending and (self.jobs is None or len(in_flight) < self.jobs):
                    index = pending.popleft()
                    if take(index):
                        in_flight[task.remote(trials[index], *args)] = index
                if not in_flight:
                    break  # every trial left was taken by another process
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    index = in_flight.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        record = failed_record(resolved[index], settings, _ray_error(exc))
                    on_record(record)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


# --- choosing an executor -----------------------------------------------------------------

def make_executor(name: str | None = None, jobs: int | None = None,
                  gpus: str | Sequence[str] | None = None, trials_per_gpu: int | None = None,
                  address: str | None = None, *,
                  progress_factory: Callable[[ResolvedTrial], Progress] | None = None) -> Executor:
    """The executor for the command-line options; ``name`` None means pool when --jobs > 1
    or --gpus is given, else sequential. Contradictory options are one-line errors."""
    gpu_list = parse_gpus(gpus) if isinstance(gpus, str) else list(gpus or ())
    if jobs is not None and jobs < 1:
        raise MvbenchError(f"--jobs {jobs} must be at least 1")
    if trials_per_gpu is not None and trials_per_gpu < 1:
        raise MvbenchError(f"--trials-per-gpu {trials_per_gpu} must be at least 1")
    name = name or ("pool" if gpu_list or (jobs or 1) > 1 else "sequential")
    if name not in EXECUTOR_NAMES:
        raise unknown_name("executor", name, EXECUTOR_NAMES)
    if address is not None and name != "ray":
        raise MvbenchError("--address names a Ray cluster; add --executor ray")
    if name == "sequential":
        given = [flag for flag, on in (("--jobs", (jobs or 1) > 1), ("--gpus", bool(gpu_list)),
                                       ("--trials-per-gpu", trials_per_gpu is not None)) if on]
        if given:
            raise MvbenchError(f"{', '.join(given)} run trials in parallel; use --executor pool "
                               f"(or drop {', '.join(given)})")
        return SequentialExecutor(progress_factory)
    if name == "pool":
        return _make_pool(jobs, gpu_list, trials_per_gpu)
    if gpu_list:
        raise MvbenchError("with --executor ray, Ray picks the GPUs: use --trials-per-gpu K to give "
                           "each trial 1/K of a GPU (--gpus is for the local pool)")
    require_ray()
    return RayExecutor(address, jobs, trials_per_gpu)


def _make_pool(jobs: int | None, gpus: list[str], trials_per_gpu: int | None) -> LocalPoolExecutor:
    if trials_per_gpu is not None and not gpus:
        raise MvbenchError("--trials-per-gpu needs --gpus (the GPUs the pool may use), "
                           "e.g. --gpus 0,1 --trials-per-gpu 2")
    per_gpu = trials_per_gpu or 1
    capacity = len(gpus) * per_gpu
    if gpus and jobs is not None and jobs > capacity:
        raise MvbenchError(f"--jobs {jobs} exceeds the {capacity} GPU slots (--gpus {','.join(gpus)} x "
                           f"--trials-per-gpu {per_gpu}); lower --jobs or raise --trials-per-gpu")
    return LocalPoolExecutor(jobs or capacity or available_cores(), gpus, per_gpu)


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    """--executor, --jobs, --gpus, --trials-per-gpu and --address."""
    group = parser.add_argument_group("parallel trials")
    group.add_argument("--executor", choices=EXECUTOR_NAMES, default=None,
                       help="sequential (default), pool (the default with --jobs N > 1 or --gpus: "
                            "spawned workers, reused between trials) or ray (a Ray cluster; "
                            f"{RAY_INSTALL})")
    group.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                       help="trials at a time (pool: default one per core, or one per GPU slot; "
                            "ray: default no limit)")
    group.add_argument("--gpus", default=None, metavar="0,1",
                       help="pool: the GPUs to use, as indices among the devices visible here (the "
                            "entries of CUDA_VISIBLE_DEVICES when set); each worker sees one as cuda:0")
    group.add_argument("--trials-per-gpu", type=int, default=None, metavar="K",
                       help="trials sharing one GPU (pool: slots per GPU; ray: each trial asks "
                            "for 1/K GPU)")
    group.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                       help="ray: join this cluster (default: start a local Ray instance)")


def executor_from_args(args: argparse.Namespace,
                       progress_factory: Callable[[ResolvedTrial], Progress] | None = None) -> Executor:
    return make_executor(args.executor, args.jobs, args.gpus, args.trials_per_gpu, args.address,
                         progress_factory=progress_factory)
