"""GPU correctness on a machine without one: the CUDA calls are mocked where the code under
test only decides what to ask of CUDA (the real check is benchmarks/gpu_check.py on a GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mvbench import executors
from mvbench.errors import MvbenchError
from mvbench.executors import RayExecutor
from mvbench.nn import kmeans, minibatches, torch_generator
from mvbench.progress import QuietProgress
from mvbench.registry import get_registry
from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved
from mvbench.specs import MethodInput
from mvbench_plugins.methods import dimvc_hia, rav

REPO = Path(__file__).resolve().parent.parent


def fake_cuda(monkeypatch, count: int = 1) -> list[str]:
    """Make this process believe it has ``count`` CUDA devices; returns the log of the memory
    calls the runner makes."""
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 8 * 2**20)
    return calls


# --- (1) Ray asks for a GPU whenever the trials run on CUDA ------------------------------------

class FakeRay:
    """Records the task options and the settings each task was given."""

    exceptions = SimpleNamespace(RayError=Exception)

    def __init__(self) -> None:
        self.options: dict | None = None
        self.settings: list[Settings] = []

    def is_initialized(self) -> bool:
        return True

    def remote(self, fn):
        ray = self

        class Task:
            def options(self, **kw):
                ray.options = kw
                return self

            def remote(self, trial, settings, plugins, threads):
                ray.settings.append(settings)
                return len(ray.settings)

        return Task()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return {"status": "ok", "ref": ref}

    def cancel(self, ref, force=False):
        pass

    def shutdown(self):
        pass


def run_on_fake_ray(monkeypatch, device: str, trials_per_gpu: int | None = None) -> FakeRay:
    ray = FakeRay()
    monkeypatch.setattr(executors, "require_ray", lambda: ray)
    records: list[dict] = []
    RayExecutor(trials_per_gpu=trials_per_gpu).run(
        [Trial(method="kmeans", dataset="synthetic", seed=0)], Settings(device=device), (), records.append)
    assert records == [{"status": "ok", "ref": 1}]
    return ray


def test_ray_requests_a_gpu_per_trial_on_cuda_without_trials_per_gpu(monkeypatch):
    fake_cuda(monkeypatch, count=2)
    ray = run_on_fake_ray(monkeypatch, "auto")
    assert ray.options["num_gpus"] == 1.0
    assert ray.settings[0].device == "cuda"  # a worker without CUDA fails instead of using the CPU
    assert run_on_fake_ray(monkeypatch, "cuda", trials_per_gpu=4).options["num_gpus"] == 0.25
    with pytest.raises(MvbenchError, match="sees the GPU Ray gives it as cuda:0; use --device cuda"):
        run_on_fake_ray(monkeypatch, "cuda:1")


def test_ray_on_the_cpu_asks_for_no_gpu(monkeypatch):
    ray = run_on_fake_ray(monkeypatch, "cpu")
    assert "num_gpus" not in ray.options and ray.settings[0].device == "cpu"


# --- (2) k-means++ samples on the CPU ------------------------------------------------------------

def test_kmeans_plus_plus_samples_on_the_cpu_in_float64_and_is_deterministic(monkeypatch):
    calls = []
    original = torch.Tensor.cumsum

    def spy(self, *args, **kwargs):
        calls.append((self.device.type, self.dtype))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cumsum", spy)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=g) + torch.randint(0, 3, (120, 1), generator=g) * 4.0
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        first, _ = kmeans(x, 3, n_init=4, seed=1)
        second, _ = kmeans(x, 3, n_init=4, seed=1)
    finally:
        torch.use_deterministic_algorithms(False)
    # CUDA's floating-point cumsum is nondeterministic: every floating one runs on the CPU in float64.
    floating = [c for c in calls if c[1].is_floating_point]
    assert floating and set(floating) == {("cpu", torch.float64)}
    assert torch.equal(first, second)


# --- (4) cuBLAS's workspace is set before CUDA can start -------------------------------------------

@pytest.mark.parametrize("module", ["mvbench.cli", "mvbench.worker"])
def test_cublas_workspace_is_set_at_import(module):
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    code = (f"import os, sys; import {module}; "
            "print(os.environ.get('CUBLAS_WORKSPACE_CONFIG'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    value, torch_loaded = out.stdout.split()
    assert value == ":4096:8"
    if module == "mvbench.cli":
        assert torch_loaded == "False"  # set before torch is even imported
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "CUBLAS_WORKSPACE_CONFIG": ":16:8"},
                          capture_output=True, text=True, check=True)
    assert kept.stdout.split()[0] == ":16:8"  # a value the user set is kept


# --- (5) loss parts are read from the device once per epoch ----------------------------------------

READS = ("__float__", "item", "tolist", "__bool__", "__int__", "nonzero")


def count_reads(monkeypatch, fn) -> Counter:
    """How often ``fn``'s own code reads a tensor back to Python (each is a host sync on a GPU).
    Reads inside torch are left out: torch.optim.Adam reads its step counter, a CPU tensor."""
    counts: Counter = Counter()
    with monkeypatch.context() as patch:
        for name in READS:
            original = getattr(torch.Tensor, name)

            def spy(self, *args, _name=name, _original=original, **kwargs):
                if not sys._getframe(1).f_globals.get("__name__", "").startswith("torch"):
                    counts[_name] += 1
                return _original(self, *args, **kwargs)

            patch.setattr(torch.Tensor, name, spy)
        fn()
    return counts


def method_input(n_views: int, options: dict, mask: torch.Tensor | None = None) -> MethodInput:
    g = torch.Generator().manual_seed(0)
    views = [torch.rand(64, 6 + v, generator=g) for v in range(n_views)]
    if mask is None:
        mask = torch.ones(64, n_views, dtype=torch.bool)
    else:
        views = [torch.where(mask[:, v, None], x, torch.nan) for v, x in enumerate(views)]
    return MethodInput(views=views, mask=mask, n_clusters=3, options=options, seed=0,
                       device=torch.device("cpu"), precision="fp32", progress=QuietProgress())


def test_rav_reads_its_loss_parts_once_per_epoch(monkeypatch):
    def reads(batch_size: int) -> Counter:
        options = {**{o.name: o.default for o in rav.OPTIONS}, "pre_epochs": 2, "epochs": 2,
                   "batch_size": batch_size, "hidden": (16,), "feature_dim": 8}
        return count_reads(monkeypatch, lambda: rav.fit_predict(method_input(2, options)))

    one_batch, four_batches = reads(64), reads(16)
    assert one_batch == four_batches  # nothing is read back per batch


def test_dimvc_hia_reads_losses_per_epoch_and_masks_once_per_batch(monkeypatch):
    def reads(n_views: int, batch_size: int) -> Counter:
        options = {"pre_epochs": 2, "epochs": 2, "batch_size": batch_size, "hidden": (16,),
                   "latent_dim": 8, "low_dim": 8}
        mask = torch.ones(64, n_views, dtype=torch.bool)
        mask[::3, 0] = False  # every view but the first complete, so each sample keeps a view
        return count_reads(monkeypatch, lambda: dimvc_hia.SPEC.fit_predict(method_input(n_views, options, mask)))

    one_batch, four_batches = reads(3, 64), reads(3, 16)
    # Loss parts are never read per batch; what is read per batch (the observed rows, the
    # padded width of the energy nets) does not grow with the number of views.
    assert one_batch["__float__"] == four_batches["__float__"]
    assert one_batch["item"] == four_batches["item"]
    assert reads(2, 16) == reads(4, 16)


def test_dimvc_hia_counts_clusters_without_bincount(monkeypatch):
    def no_bincount(*args, **kwargs):
        raise AssertionError("bincount reads the largest label back to the host")

    monkeypatch.setattr(torch, "bincount", no_bincount)
    nets = dimvc_hia.DimvcHiaNet([5], (8,), 4, 4, n_clusters=3).energy
    cluster = torch.tensor([2, 0, 2, 2, 1])
    energy, valid = nets(torch.randn(5, 4), cluster)
    assert valid.sum(dim=1).tolist() == [1, 1, 3] and energy.shape == (3, 3)


# --- (6) one batch-order policy ---------------------------------------------------------------------

def test_batch_order_is_drawn_on_the_cpu_and_moved_to_the_device():
    assert torch_generator(0).device.type == "cpu"
    with pytest.raises(ValueError, match="on the CPU"):
        list(minibatches(10, 3, SimpleNamespace(device=torch.device("cuda")), device="cpu"))
    on_cpu = list(minibatches(10, 3, torch_generator(0), device="cpu"))
    elsewhere = list(minibatches(10, 3, torch_generator(0), device="meta"))  # stands in for a GPU
    assert [b.shape for b in on_cpu] == [b.shape for b in elsewhere]
    assert all(b.device.type == "meta" for b in elsewhere)


def test_no_plugin_draws_random_numbers_with_a_device_generator():
    for path in (REPO / "plugins" / "methods").glob("*.py"):
        text = path.read_text()
        assert "Generator(device" not in text and "device=generator.device" not in text, path.name


# --- (7) peak reserved memory beside the peak allocated ----------------------------------------------

def test_a_cuda_trial_records_peak_reserved_memory_of_its_own(monkeypatch):
    calls = fake_cuda(monkeypatch)
    resolved = resolve(Trial(method="kmeans", dataset="synthetic", seed=0,
                             dataset_options={"samples": "30", "dims": "3"}), get_registry())
    record = run_resolved(resolved, Settings(device="cuda"), DatasetCache(None))
    # The trial itself fails here (torch has no CUDA on this machine), but the memory is recorded.
    assert record["device"] == "cuda" and record["device_name"] == "Fake GPU"
    assert (record["peak_gpu_mb"], record["peak_gpu_reserved_mb"]) == (3.0, 8.0)
    assert calls == ["empty_cache", "reset"]  # the cache is released before the peak is reset


# --- (9) the first-use script ------------------------------------------------------------------------

def test_gpu_check_skips_with_one_line_without_a_gpu():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines() == [
        "gpu_check: skipped: no CUDA device is visible (torch.cuda.is_available() is false); "
        "run it on the first use of a GPU machine"]

