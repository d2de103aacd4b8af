"""First use of a GPU: is every method deterministic there, and how fast is an epoch?

For every installed method (or ``--methods``), on the embedded ``handwritten`` dataset (methods
that handle missing views get a mask of rate 0.5: their authors' generator where the suite has
one, else mcar), with every ``*epochs`` option set to
``--epochs`` (and DSIMVC's ``iterations`` to 10 per epoch):

1. two runs in this process with the same seed under strict determinism
   (``torch.use_deterministic_algorithms(True, warn_only=False)``, so an operation without a
   deterministic CUDA kernel raises instead of warning): the labels must be equal;
2. seconds per epoch of each stage with 1 trial on the GPU (the first run), and with K trials
   sharing it (``--trials-per-gpu K``, through the local pool exactly as
   ``mvbench sweep --gpus I --trials-per-gpu K`` runs them): median over epochs after the first.

Without a CUDA device it prints one line saying so and exits 0. Exit status 1 when a method's
labels differ between the two runs or a run fails. Examples::

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --methods mflvc,dimvc-hia --epochs 5 --trials-per-gpu 8 --gpu 1
"""

from __future__ import annotations

from mvbench.determinism import configure_cublas

configure_cublas()  # before torch can start CUDA

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mvbench.data.datadir import resolve_data_dir  # noqa: E402
from mvbench.executors import LocalPoolExecutor  # noqa: E402
from mvbench.missing import blank_missing, fill_missing, make_mask  # noqa: E402
from mvbench.options import resolve_options  # noqa: E402
from mvbench.progress import QuietProgress  # noqa: E402
from mvbench.registry import Registry, get_registry  # noqa: E402
from mvbench.runner import Settings, Trial  # noqa: E402
from mvbench.seeding import seed_everything  # noqa: E402
from mvbench.specs import Dataset, MethodInput, MethodSpec  # noqa: E402

DATASET = "handwritten"
MISSING_RATE = 0.5
AUTHOR_MASKS = {"proimp": "get-mask", "dsimvc": "dsimvc-mask"}


def short_options(spec: MethodSpec, epochs: int) -> dict[str, Any]:
    """Every ``*epochs`` option of the method set to ``epochs``; DSIMVC's bi-level ``iterations``
    to 10 per epoch."""
    options: dict[str, Any] = {o.name: epochs for o in spec.options
                               if o.type == "int" and o.name.endswith("epochs")}
    if any(o.name == "iterations" for o in spec.options):
        options["iterations"] = 10 * epochs
    return options


def missing_setting(spec: MethodSpec) -> tuple[str, dict[str, Any]]:
    if not spec.handles_missing:
        return "none", {}
    return AUTHOR_MASKS.get(spec.name, "mcar"), {"rate": MISSING_RATE}


def strict_run(spec: MethodSpec, dataset: Dataset, registry: Registry, options: dict[str, Any],
               device: torch.device, seed: int) -> tuple[np.ndarray, dict[str, list[float]]]:
    """One fit_predict under strict determinism: the labels and the seconds per epoch."""
    mechanism, missing_options = missing_setting(spec)
    mask = make_mask(dataset, registry.mechanism(mechanism),
                     resolve_options(registry.mechanism(mechanism).options, missing_options), seed)
    views = (blank_missing(dataset.views, mask) if spec.handles_missing
             else fill_missing(dataset.views, mask, "mean"))
    seed_everything(seed)
    torch.use_deterministic_algorithms(True, warn_only=False)
    output = spec.fit_predict(MethodInput(
        views=[torch.as_tensor(x, dtype=torch.float32, device=device) for x in views],
        mask=torch.as_tensor(mask, device=device), n_clusters=dataset.n_clusters,
        options=resolve_options(spec.options, options, owner=f"method {spec.name!r}"), seed=seed,
        device=device, precision="fp32", progress=QuietProgress(), dataset_name=dataset.name))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return np.asarray(output.labels), output.extras.get("epoch_seconds", {})


def shared_gpu_seconds(spec: MethodSpec, options: dict[str, Any], gpu: str, k: int) -> dict[str, list[float]]:
    """Seconds per epoch of each stage, pooled over K trials (seeds 0..K-1) sharing one GPU."""
    mechanism, missing_options = missing_setting(spec)
    trials = [Trial(method=spec.name, dataset=DATASET, seed=seed, missing=mechanism,
                    method_options=options, missing_options=missing_options) for seed in range(k)]
    records: list[dict[str, Any]] = []
    LocalPoolExecutor(jobs=k, gpus=(gpu,), trials_per_gpu=k).run(trials, Settings(device="cuda"), (),
                                                                    records.append)
    failed = [r.get("error") for r in records if r["status"] != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {k} shared-GPU trials failed: {failed[0]}")
    pooled: dict[str, list[float]] = {}
    for record in records:
        for stage, values in record["extras"].get("epoch_seconds", {}).items():
            pooled.setdefault(stage, []).extend(values[1:] or values)
    return pooled


def per_epoch(seconds: dict[str, list[float]], skip_first: bool) -> str:
    parts = []
    for stage, values in seconds.items():
        values = (values[1:] if skip_first else values) or values
        if values:
            parts.append(f"{stage} {statistics.median(values):.3f}")
    return ", ".join(parts) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of every training stage")
    parser.add_argument("--trials-per-gpu", type=int, default=4, metavar="K")
    parser.add_argument("--gpu", default="0", help="index of the GPU among the visible ones")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: skipped: no CUDA device is visible (torch.cuda.is_available() is false); "
              "run it on the first use of a GPU machine")
        return 0
    registry = get_registry()
    names = args.methods.split(",") if args.methods else sorted(registry.methods)
    spec = registry.dataset(DATASET)
    dataset = spec.load(resolve_options(spec.options, {}), str(resolve_data_dir(None)))
    device = torch.device("cuda", int(args.gpu))
    print(f"{torch.cuda.get_device_name(device)}; {DATASET} (missing-view methods: rate {MISSING_RATE}); "
          f"{args.epochs} epochs per stage; seconds per epoch (median after the first)")
    problems = []
    for name in names:
        method = registry.method(name)
        options = {**method.presets.get(DATASET, {}), **short_options(method, args.epochs)}
        try:
            first, seconds = strict_run(method, dataset, registry, options, device, args.seed)
            second, _ = strict_run(method, dataset, registry, options, device, args.seed)
            verdict = "labels equal" if np.array_equal(first, second) else "LABELS DIFFER"
            shared = shared_gpu_seconds(method, options, args.gpu, args.trials_per_gpu)
        except Exception as exc:  # report every method, not just the first failure
            problems.append(name)
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            continue
        if verdict != "labels equal":
            problems.append(name)
        print(f"{name}: {verdict} (2 runs, strict determinism) | 1 trial/GPU: {per_epoch(seconds, True)} | "
              f"{args.trials_per_gpu} trials/GPU: {per_epoch(shared, False)}")
    print(f"gpu_check: {len(names) - len(problems)} of {len(names)} methods deterministic and running"
          + (f"; check {', '.join(problems)}" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
