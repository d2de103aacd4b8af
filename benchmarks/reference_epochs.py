"""Seconds per epoch of the authors' own training code, on this CPU, beside ours.

Runs the reference implementation of GCFAggMVC, CVCL, ProImp or DSIMVC from a checkout of the
authors' repository (``--reference-code DIR``; their files are imported and run as they are,
nothing in DIR is edited) for ``--epochs N`` epochs of each of their training stages, times every
epoch with ``time.perf_counter``, and prints per stage the same line as ``bench_epochs.py`` (plus
the mean), then the ``bench_epochs.py`` command that times our implementation on the same dataset
with the same stage lengths. Compare the two on an idle machine only.

``--full`` (CVCL, DSIMVC) instead runs their own schedule through their own evaluation and prints
its metrics beside the stage times: what their code scores on our file, to set beside our seeded
runs (the printed command). DSIMVC seeds nothing itself: the global RNGs are seeded with ``--seed``
(default 0; their mask is drawn from them). CVCL seeds itself with its per-dataset preset's seed
(handwritten 50): ``--seed`` replaces that seed, and without it their own seed runs.

    python benchmarks/reference_epochs.py --method gcfaggmvc --reference-code DIR --dataset synthetic3d
    python benchmarks/reference_epochs.py --method cvcl --reference-code DIR --dataset msrcv1 --epochs 3
    python benchmarks/reference_epochs.py --method proimp --reference-code DIR --dataset scene15 --threads 1
    python benchmarks/reference_epochs.py --method dsimvc --reference-code DIR --dataset synthetic3d \\
        --missing-rate 0.5
    python benchmarks/reference_epochs.py --method dsimvc --reference-code DIR --dataset synthetic3d \\
        --missing-rate 0.5 --full --seed 0 --threads 1 --their-args "--initial_epochs 30 --iterations 100"
    python benchmarks/reference_epochs.py --method cvcl --reference-code DIR --dataset handwritten-mat \\
        --full --threads 1

DIR: a checkout of Galaxy922/GCFAggMVC, chenjie20/CVCL, XLearning-SCU/2023-IJCAI-ProImp or
Gasteinh/DSIMVC. Datasets are our registry's names; the file is read from ``--data-dir`` (else
$MVBENCH_DATA). What the harness does around their code, for every method: the device is CPU
(``torch.cuda.is_available`` is False and their hard-coded ``'cuda'`` / ``.cuda()`` calls keep
tensors on the CPU), their own seeds apply (the global RNGs are first seeded with ``--seed``, which
matters only for DSIMVC, whose code seeds nothing; CVCL's preset seed is replaced only when
``--seed`` is given), the data come from our file, the schedule is set through their arguments or
config, their output goes to a log in ``--workdir``, and the run stops where their evaluation would
start (it is never timed; ``--full`` runs it). If the checkout or the environment
lacks something their code needs, one line says what.

What is timed, per method:

- gcfaggmvc (train.py, ``--dataset Synthetic3d | MNIST-USPS``: their seed 10): every call of
  train.py's per-epoch functions ``pre_train(epoch)`` (stage ``pretrain``) and ``fine_tune(epoch)``
  (stage ``fine_tune``), run by their own top-level loop with ``rec_epochs`` and
  ``fine_tune_epochs`` set to N. Their HEAD ``load_data`` knows only their Hdigit file, so it is
  replaced by one that serves our file's views as stored, one sample per ``__getitem__`` as their
  loaders do. Their code needs torch patched as "Obtain -S.docx" describes; the patch is applied
  in this process only (a TransformerEncoderLayer whose attention reads norm1(x) and that returns
  its attention weights), without the docx's unused copy of the weights to NumPy.
- cvcl (main.py as ``__main__``, ``--db MSRCv1 | hand | scene | MNIST-USPS``: their preset and
  seed): every call of models.py's per-epoch ``contrastive_train`` (stage ``finetune``), the run
  stopped after N of them; their ``pre_train`` runs all its epochs in one call, so it is called
  N times with one epoch each, each call one ``pretrain`` epoch (the data order is the same:
  either way every epoch draws its shuffle from the global RNG). Their loader reads our file,
  linked under the name it opens. With ``--full`` all their epochs run and then their ``valid``.
- proimp (run.py's ``main``, ``--dataset 0 | 4`` = Scene-15 | CUB, one mask, their seeds): their
  epoch loop lives inside ``ProImp.train``; an epoch is timed from its shuffle of the complete pairs
  to the end of its last batch (``pretrain`` for the first N epochs, ``train`` for N more with the
  prototype loss). configure.py's epochs are set to 2N and pretrain_epoch to N; the evaluation
  they run every ``print_num`` epochs is moved to the end (``print_num`` = 2N) and not run.
  ``np.int`` (gone from NumPy >= 1.24, used by their get_mask) is restored as ``int`` for the run;
  torchvision and faiss, imported but not used on this path, are stubbed when absent.
- dsimvc (demo.py's ``main``, ``--dataset synthetic3d | mnist_usps``, one run ``--T 1``): their
  stages are loops inside ``pretrain``, ``initial`` and ``bi_level_train``; an epoch is one pass
  over the stage's DataLoader (``pretrain``, ``neighbour_mse``, ``neighbour_contrastive``) and a
  ``bilevel`` epoch is one step, as in ours. pretrain_epochs, initial_epochs and iterations are set
  to N; their neighbour MSE loop has a fixed 200 epochs, of which passes after the N-th yield no
  batch. Our file is written as the npz their loader reads (labels 0-based). ``memory_refresh``:
  the part of each bilevel step spent in their memory update (a pass over all N samples, a kNN
  search and a re-imputation, whose result never reaches training).

ProImp and DSIMVC train on the complete samples only, so an epoch's cost follows their number:
the output gives it for their run and for the printed bench_epochs command, whose ``--missing``
is our copy of their mask generator (get-mask: ProImp's, the same mask at ``--seed 1``;
dsimvc-mask: DSIMVC's distribution, theirs being unseeded).
What their epoch holds that ours does not, whatever the machine: each method's note in the output.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import os
import random
import re
import shlex
import statistics
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor
from torch.utils.data import DataLoader

from bench_epochs import summary
from mvbench.data.datadir import resolve_data_dir
from mvbench.errors import MvbenchError
from mvbench.missing import make_mask
from mvbench.options import resolve_options
from mvbench.registry import build_registry
from mvbench.specs import Dataset


class Stop(Exception):
    """Raised by a hook where the authors' run would go on to evaluate: the timing is done."""


class CannotRun(Exception):
    """The checkout or this environment lacks what their code needs (one line says what)."""


@dataclass
class Timings:
    stages: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.stages.setdefault(stage, []).append(seconds)

    def timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with every call's seconds added to ``stage``."""
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self.add(stage, time.perf_counter() - start)
            return out
        return call


@dataclass
class Context:
    ref: Path
    dataset: Dataset
    file: Path
    their_name: str
    epochs: int | None  # None: their own schedule, through their evaluation
    missing_rate: float
    workdir: Path
    threads: int | None
    their_args: list[str] = field(default_factory=list)  # appended to their command line
    their_seed: int | None = None  # replaces the seed their code sets itself (None: theirs)
    timings: Timings = field(default_factory=Timings)


def stop(*_args: Any, **_kwargs: Any) -> None:
    raise Stop


def caller() -> str:
    """Name of the function that called the hook calling this (their loop's function)."""
    return sys._getframe(2).f_code.co_name


# --- running their code --------------------------------------------------------------------------

def on_cpu(device: Any) -> Any:
    is_cuda = (isinstance(device, torch.device) and device.type == "cuda") or (
        isinstance(device, str) and device.startswith("cuda"))
    return "cpu" if is_cuda else device


@contextlib.contextmanager
def cpu_only() -> Iterator[None]:
    """CPU whatever the machine: no CUDA is reported, and their hard-coded ``.to('cuda')`` and
    ``.cuda()`` leave tensors and modules on the CPU (the CPU build would raise instead)."""
    tensor_to = torch.Tensor.to

    def to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if "device" in kwargs:
            kwargs["device"] = on_cpu(kwargs["device"])
        return tensor_to(self, *map(on_cpu, args), **kwargs)

    with mock.patch.object(torch.cuda, "is_available", lambda: False), \
            mock.patch.object(torch.Tensor, "to", to), \
            mock.patch.object(torch.Tensor, "cuda", lambda self, *a, **k: self), \
            mock.patch.object(torch.nn.Module, "cuda", lambda self, *a, **k: self):
        yield


@contextlib.contextmanager
def their_process(ref: Path, workdir: Path, argv: list[str], log: TextIO) -> Iterator[None]:
    """As if ``python ARGV`` ran in ``workdir`` with their folder first on the path; their
    output goes to ``log``."""
    saved_argv, saved_path, saved_cwd = sys.argv, list(sys.path), os.getcwd()
    sys.argv = argv
    sys.path.insert(0, str(ref))
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        os.chdir(saved_cwd)
        sys.argv, sys.path[:] = saved_argv, saved_path


def import_theirs(ref: Path, name: str) -> types.ModuleType:
    """Their module ``name``; an installed module of the same name must not stand in for it."""
    module = importlib.import_module(name)
    if Path(module.__file__ or "").resolve().parent != ref.resolve():
        raise CannotRun(f"'import {name}' finds {module.__file__}, not {ref / (name + '.py')}")
    return module


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    if link_path.is_symlink() or link_path.exists():
        link_path.unlink()
    link_path.symlink_to(target)


def run_script(path: Path, wrap: Mapping[str, Callable[[Callable[..., Any]], Callable[..., Any]]],
               before_loop: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Their script as ``__main__``, its top-level statements executed one by one in their order
    and namespace: each function named in ``wrap`` is wrapped once defined, and
    ``before_loop(namespace)``, when given, runs before the first top-level loop (where the
    arguments that set the schedule have their final values)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    looped = False
    for node in tree.body:
        if isinstance(node, (ast.For, ast.While)) and not looped and before_loop:
            before_loop(namespace)
            looped = True
        exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
        if isinstance(node, ast.FunctionDef) and node.name in wrap:
            namespace[node.name] = wrap[node.name](namespace[node.name])
    if before_loop and not looped:
        raise CannotRun(f"{path.name} has no top-level training loop")


# --- GCFAggMVC -----------------------------------------------------------------------------------

class ObtainSLayer(torch.nn.TransformerEncoderLayer):
    """The encoder layer as torch's source reads after the edits of the authors' "Obtain -S.docx"
    (post-norm, as their layer is built): attention over norm1(x) that also returns its weights,
    the same norm1 after the residual, and ``(output, weights)`` returned, which their network
    unpacks as ``commonz, S``."""

    def forward(self, src: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        normed = self.norm1(src)
        # One tensor as query, key and value, as in their patch: the packed in-projection.
        attended, weights = self.self_attn(normed, normed, normed, need_weights=True)
        x = self.norm1(src + self.dropout1(attended))
        x = self.norm2(x + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x))))))
        return x, weights


class FileDataset(torch.utils.data.Dataset):
    """Our file's views as stored, served one sample per ``__getitem__`` in the item layout of
    their loaders: ([view tensors], label, index)."""

    def __init__(self, dataset: Dataset) -> None:
        self.views = [np.ascontiguousarray(x, dtype=np.float32) for x in dataset.views]
        self.labels = np.asarray(dataset.labels, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int) -> tuple[list[Tensor], np.int32, Tensor]:
        return [torch.from_numpy(x[idx]) for x in self.views], self.labels[idx], torch.from_numpy(np.array(idx)).long()


def run_gcfaggmvc(ctx: Context) -> None:
    dataset = ctx.dataset
    dataloader = import_theirs(ctx.ref, "dataloader")

    def load_data(_name: str) -> tuple[FileDataset, list[int], int, int, int]:
        return FileDataset(dataset), dataset.dims, dataset.n_views, dataset.n_samples, dataset.n_clusters

    def set_schedule(namespace: dict[str, Any]) -> None:
        # After their per-dataset presets; their argparse leaves these untyped, so set ints here.
        namespace["args"].rec_epochs = ctx.epochs
        namespace["args"].fine_tune_epochs = ctx.epochs
        namespace["valid"] = stop  # the evaluation after the last fine-tune epoch

    wrap = {"pre_train": lambda fn: ctx.timings.timed("pretrain", fn),
            "fine_tune": lambda fn: ctx.timings.timed("fine_tune", fn)}
    with mock.patch.object(dataloader, "load_data", load_data), \
            mock.patch.object(torch.nn, "TransformerEncoderLayer", ObtainSLayer):
        run_script(ctx.ref / "train.py", wrap, set_schedule)


# --- CVCL ----------------------------------------------------------------------------------------

def run_cvcl(ctx: Context) -> None:
    # Their MultiviewData opens datasets/<file> in the working folder: our file, linked there.
    link(ctx.file, ctx.workdir / "datasets" / CVCL_FILES[ctx.their_name])
    models = import_theirs(ctx.ref, "models")
    pre_train, contrastive_train = models.pre_train, models.contrastive_train

    def pre_train_per_epoch(network_model: Any, mv_data: Any, batch_size: int, epochs: Any,
                            optimizer: Any) -> np.ndarray:
        # Their mse_epochs arrives as a string when given on their command line.
        count = int(epochs) if ctx.epochs is None else ctx.epochs
        losses = [ctx.timings.timed("pretrain", pre_train)(network_model, mv_data, batch_size, 1, optimizer)
                  for _ in range(count)]
        return np.concatenate(losses)

    def timed_contrastive_train(*args: Any, **kwargs: Any) -> float:
        if len(ctx.timings.stages.get("finetune", [])) == ctx.epochs:
            raise Stop
        return ctx.timings.timed("finetune", contrastive_train)(*args, **kwargs)

    # main.py takes these names from models by its star import, so patch them before it runs.
    patches: dict[str, Any] = {"pre_train": pre_train_per_epoch, "contrastive_train": timed_contrastive_train}
    if ctx.epochs is not None:
        patches["valid"] = stop
    # Their presets overwrite args.seed after parsing, so a seed of ours replaces set_seed's argument.
    seed = ctx.their_seed
    wrap = {} if seed is None else {"set_seed": lambda set_seed: lambda _their_seed: set_seed(seed)}
    with mock.patch.multiple(models, **patches):
        run_script(ctx.ref / "main.py", wrap)


# --- ProImp --------------------------------------------------------------------------------------

class ProImpClock:
    """Times ProImp.train's epochs: from the epoch's shuffle of the complete pairs to the end of
    its batch generator (model.py's ``shuffle`` and ``next_batch``, called once per epoch)."""

    def __init__(self, model: types.ModuleType, timings: Timings, pretrain_epochs: int) -> None:
        self._shuffle, self._next_batch = model.shuffle, model.next_batch
        self.timings, self.pretrain_epochs = timings, pretrain_epochs
        self.start, self.epoch = 0.0, 0

    def shuffle(self, *arrays: Any, **kwargs: Any) -> Any:
        self.start = time.perf_counter()
        self.timings.notes["pairs"] = f"their complete pairs trained on: {len(arrays[0])}"
        return self._shuffle(*arrays, **kwargs)

    def next_batch(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from self._next_batch(*args, **kwargs)
        stage = "pretrain" if self.epoch < self.pretrain_epochs else "train"
        self.timings.add(stage, time.perf_counter() - self.start)
        self.epoch += 1


def stub_if_absent(names: Sequence[str]) -> dict[str, types.ModuleType]:
    """Empty modules for packages their files import but this path never uses."""
    return {name: types.ModuleType(name) for name in names if importlib.util.find_spec(name) is None}


def run_proimp(ctx: Context) -> None:
    # Their load_data reads sys.path[0]/data/<file>: our file, linked under their name.
    link(ctx.file, ctx.workdir / "data" / PROIMP_FILES[ctx.their_name])
    sys.path.insert(0, str(ctx.workdir))
    stubs = stub_if_absent(("torchvision", "faiss"))
    if stubs:
        ctx.timings.notes["stubs"] = f"stubbed (imported by their files, unused here): {', '.join(stubs)}"
    sys.modules.update(stubs)  # for the rest of this process, whose only job is this run
    configure = import_theirs(ctx.ref, "configure")
    model = import_theirs(ctx.ref, "model")
    default_config = configure.get_default_config

    def get_default_config(name: str) -> dict[str, Any]:
        config = default_config(name)
        config["training"].update(epoch=2 * ctx.epochs, pretrain_epoch=ctx.epochs, missing_rate=ctx.missing_rate)
        return config

    clock = ProImpClock(model, ctx.timings, ctx.epochs)
    # np.int is the builtin int (an alias NumPy 1.24 removed); their get_mask uses it.
    with mock.patch.object(configure, "get_default_config", get_default_config), \
            mock.patch.object(np, "int", int, create=True), \
            mock.patch.multiple(model, shuffle=clock.shuffle, next_batch=clock.next_batch), \
            mock.patch.object(model.ProImp, "evaluation", stop):
        import_theirs(ctx.ref, "run").main()  # run.py binds get_default_config at import


# --- DSIMVC --------------------------------------------------------------------------------------

def write_npz(dataset: Dataset, path: Path) -> None:
    """Our file in the npz layout their load_data reads (labels 0-based: K = max + 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.unique(dataset.labels, return_inverse=True)[1].astype(np.int64)
    np.savez(path, n_views=dataset.n_views, labels=labels,
             **{f"view_{v}": np.asarray(x, dtype=np.float32) for v, x in enumerate(dataset.views)})


@contextlib.contextmanager
def timed_loader_passes(ctx: Context, stage_of: Callable[[DataLoader, str], tuple[str, bool] | None]
                        ) -> Iterator[None]:
    """Times passes over DataLoaders: ``stage_of(loader, calling function)`` names the stage
    and whether each batch is an epoch (a step) rather than the whole pass, or returns None
    (not timed). A stage's passes after the N-th yield no batch (a hard-coded stage length)."""
    original = DataLoader.__iter__
    passes: dict[str, int] = {}

    def timed(batches: Iterator[Any], stage: str, per_step: bool) -> Iterator[Any]:
        requests = []
        while True:
            requests.append(time.perf_counter())
            try:
                batch = next(batches)
            except StopIteration:
                break
            yield batch
        spans = np.diff(requests) if per_step else [requests[-1] - requests[0]]
        for seconds in spans:
            ctx.timings.add(stage, float(seconds))

    def __iter__(loader: DataLoader) -> Iterator[Any]:
        found = stage_of(loader, caller())
        if found is None:
            return original(loader)
        stage, per_step = found
        passes[stage] = passes.get(stage, 0) + 1
        if ctx.epochs is not None and passes[stage] > ctx.epochs:
            return iter(())
        return timed(original(loader), stage, per_step)

    with mock.patch.object(DataLoader, "__iter__", __iter__):
        yield


def run_dsimvc(ctx: Context) -> None:
    write_npz(ctx.dataset, ctx.workdir / "data" / f"{ctx.their_name}.npz")
    demo = import_theirs(ctx.ref, "demo")  # reads the npz, scales, applies its presets
    if ctx.threads:
        sys.modules["faiss"].omp_set_num_threads(ctx.threads)
    if ctx.epochs is not None:
        for name in ("pretrain_epochs", "initial_epochs", "iterations"):
            setattr(demo.args, name, ctx.epochs)

    def stage_of(loader: DataLoader, function: str) -> tuple[str, bool] | None:
        if function == "pretrain":
            ctx.timings.notes["complete"] = f"their complete samples: {len(loader.dataset)}"
            return "pretrain", False
        if function == "initial":
            return ("neighbour_contrastive" if loader.drop_last else "neighbour_mse"), False
        if function == "bi_level_train" and loader is not demo.incomplete_loader:
            return "bilevel", True
        return None  # the incomplete batches (zipped with the complete ones) and the memory's passes

    update_feature = demo.Memory.update_feature

    def timed_update_feature(memory: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = update_feature(memory, *args, **kwargs)
        if caller() == "bi_level_train":
            ctx.timings.add("memory_refresh", time.perf_counter() - start)
        return out

    for stage in ("pretrain", "neighbour_mse", "neighbour_contrastive", "bilevel", "memory_refresh"):
        ctx.timings.stages[stage] = []  # print order: a refresh ends before its step does
    with contextlib.ExitStack() as patches:
        patches.enter_context(timed_loader_passes(ctx, stage_of))
        patches.enter_context(mock.patch.object(demo.Memory, "update_feature", timed_update_feature))
        if ctx.epochs is not None:
            patches.enter_context(mock.patch.object(demo, "valid", stop))
        demo.main()


# --- the methods ---------------------------------------------------------------------------------

CVCL_FILES = {"MSRCv1": "MSRCv1.mat", "hand": "handwritten.mat", "scene": "Scene15.mat", "MNIST-USPS": "MNIST_USPS.mat"}
PROIMP_FILES = {"0": "Scene-15.mat", "4": "cub_googlenet_doc2vec_c10.mat"}


@dataclass(frozen=True)
class Reference:
    repo: str
    files: tuple[str, ...]
    packages: Mapping[str, str]  # import name -> pip name
    datasets: Mapping[str, str]  # our registry name -> their name for it
    argv: Callable[[Context], list[str]]
    run: Callable[[Context], None]
    bench_set: Callable[[int], str]  # our options for the same stage lengths
    missing_rate: float  # their default (0: complete views only)
    note: str  # what their epoch holds that ours does not
    views: tuple[int, ...] = ()  # the views they train on (empty: all)
    mask: str = ""  # our missingness mechanism that draws masks as their code does
    mask_seed: int = 0  # the trial seed whose mask is theirs, where one is (bench_epochs' --seed)
    full_run: str = ""  # with --full: our command for the same setting (empty: --full not supported)
    own_seed: bool = False  # their code seeds itself (a preset's seed), which --seed replaces


REFERENCES = {
    "gcfaggmvc": Reference(
        "Galaxy922/GCFAggMVC", ("train.py", "network.py", "loss.py", "metric.py", "dataloader.py"), {},
        {"synthetic3d": "Synthetic3d", "mnist-usps": "MNIST-USPS"},
        lambda ctx: ["train.py", "--dataset", ctx.their_name], run_gcfaggmvc,
        lambda n: f"pre_epochs={n} fine_tune_epochs={n}", 0.0,
        "their epoch also holds per-sample __getitem__ + collate, the encoders run twice per fine-tune "
        "batch, and each SgCL call (V per batch) rebuilds its 2B x 2B mask in a Python loop"),
    "cvcl": Reference(
        "chenjie20/CVCL", ("main.py", "models.py", "layers.py", "loss.py", "dataprocessing.py", "utils.py",
                           "metrics.py"), {},
        {"msrcv1": "MSRCv1", "handwritten-mat": "hand", "scene15": "scene", "mnist-usps": "MNIST-USPS"},
        lambda ctx: ["main.py", "--db", ctx.their_name, "--gpu", ""], run_cvcl,
        lambda n: f"pretrain_epochs={n} finetune_epochs={n}", 0.0,
        "their epoch also holds per-sample __getitem__ (row indexing) + collate and a new DataLoader "
        "per epoch; the fine-tune stage is at most their preset's con_epochs long",
        full_run="python benchmarks/quality_cvcl.py --datasets {dataset} --seeds 0 1 2 3 4 --threads 1",
        own_seed=True),
    "proimp": Reference(
        "XLearning-SCU/2023-IJCAI-ProImp", ("run.py", "model.py", "configure.py", "datasets.py", "get_mask.py",
                                            "util.py", "evaluation.py"), {"einops": "einops", "munkres": "munkres"},
        {"scene15": "0", "cub": "4"},
        lambda ctx: ["run.py", "--dataset", ctx.their_name, "--devices", "", "--print_num", str(2 * ctx.epochs),
                     "--test_time", "1"], run_proimp,
        lambda n: f"epochs={2 * n} pretrain_epochs={n}", 0.5,
        "their first train epoch includes the prototype matching; each batch rebuilds the 2B x 2B "
        "instance-loss mask in a Python loop; their full schedule also evaluates (silhouette + "
        "k-means) every 50 epochs inside the loop, not timed here",
        views=(0, 1), mask="get-mask", mask_seed=1),
    "dsimvc": Reference(
        "Gasteinh/DSIMVC", ("demo.py", "network.py", "meta_network.py", "dataloader.py", "loss.py", "make_mask.py",
                            "evaluation.py"), {"faiss": "faiss-cpu"},
        {"synthetic3d": "synthetic3d", "mnist-usps": "mnist_usps"},
        lambda ctx: ["demo.py", "--dataset", ctx.their_name, "--miss_rate", str(ctx.missing_rate), "--T", "1"],
        run_dsimvc,
        lambda n: f"pretrain_epochs={n} neighbour_mse_epochs={n} initial_epochs={n} iterations={n}", 0.1,
        "each bilevel step also builds a new network for the virtual step and runs the memory refresh "
        "(memory_refresh), which ours does not (reimpute=off); every pass loads per sample with a copy",
        mask="dsimvc-mask",
        full_run="python benchmarks/quality_dsimvc.py --datasets {dataset} --rate {rate:g} --seeds {seed}"),
}


def check_checkout(reference: Reference, ref: Path) -> None:
    missing = [name for name in reference.files if not (ref / name).is_file()]
    if missing:
        raise CannotRun(f"{ref} lacks {', '.join(missing)}")
    absent = [pip for name, pip in reference.packages.items() if importlib.util.find_spec(name) is None]
    if absent:
        raise CannotRun(f"their code needs packages not installed here: pip install {' '.join(absent)}")


def their_failure(exc: BaseException, ref: Path) -> str:
    """The error and the innermost line of their code it passed through."""
    frames = traceback.extract_tb(exc.__traceback__)
    theirs = [f for f in frames if Path(f.filename).resolve().parent == ref.resolve()] or frames
    where = f" (at {Path(theirs[-1].filename).name}:{theirs[-1].lineno})" if theirs else ""
    return f"{type(exc).__name__}: {exc}{where}"


# --- the run and its report ----------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=sorted(REFERENCES))
    parser.add_argument("--reference-code", required=True, metavar="DIR", help="a checkout of the authors' repository")
    parser.add_argument("--dataset", required=True, help="our registry's name of a dataset their code supports")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of each of their stages (>= 1; default 2)")
    parser.add_argument("--full", action="store_true",
                        help="their own schedule through their own evaluation, whose metrics are printed "
                             "(cvcl, dsimvc; one run)")
    parser.add_argument("--threads", type=int, default=None, help="torch, BLAS and OpenMP threads")
    parser.add_argument("--missing-rate", type=float, default=None,
                        help="fraction of samples missing a view (default: theirs, proimp 0.5, dsimvc 0.1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seeds the global RNGs before their code runs (default 0); for code that seeds "
                             "itself from its preset (cvcl), replaces that seed (default: theirs)")
    parser.add_argument("--their-args", default="", metavar="ARGS",
                        help="options appended to their command line, e.g. \"--initial_epochs 30 --iterations 100\" "
                             "for DSIMVC with --full (their per-dataset presets, set after parsing, still win)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--workdir", default=None,
                        help="their working folder, with their output log (default: a new temporary one)")
    args = parser.parse_args()
    if args.full and args.epochs is not None:
        parser.error("--full runs their own schedule: leave out --epochs")
    if args.full and not REFERENCES[args.method].full_run:
        parser.error(f"--full is not supported for {args.method}: use --epochs N (supported: "
                     f"{', '.join(name for name, ref in REFERENCES.items() if ref.full_run)})")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not args.full and args.epochs is None:
        args.epochs = 2
    return args


def make_context(args: argparse.Namespace, reference: Reference, registry: Any, prefix: str) -> Context:
    """Checks the request against what their code supports and loads our dataset."""
    if args.dataset not in reference.datasets:
        raise SystemExit(f"{prefix} on {args.dataset!r}: it supports {', '.join(reference.datasets)} of ours")
    rate = reference.missing_rate if args.missing_rate is None else args.missing_rate
    if reference.missing_rate == 0 and rate:
        raise SystemExit(f"{prefix} with missing views: it takes complete views only")
    spec = registry.dataset(args.dataset)
    data_dir = resolve_data_dir(args.data_dir)
    try:
        dataset = spec.load(resolve_options(spec.options, {"preprocess": "none"}), str(data_dir))
    except MvbenchError as exc:
        raise SystemExit(f"reference_epochs: {exc}") from None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix=f"reference-{args.method}-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    return Context(Path(args.reference_code).resolve(), dataset, data_dir / spec.summary["files"][0],
                   reference.datasets[args.dataset], args.epochs, rate, workdir, args.threads,
                   shlex.split(args.their_args), args.seed if reference.own_seed else None)


def run_theirs(reference: Reference, ctx: Context, seed: int, log_path: Path, prefix: str) -> float:
    """Their run, up to where it would evaluate; returns its seconds or exits with one line."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    try:
        check_checkout(reference, ctx.ref)
        with open(log_path, "w") as log, cpu_only(), threadpool_limits(ctx.threads), \
                their_process(ctx.ref, ctx.workdir, reference.argv(ctx) + ctx.their_args, log):
            with contextlib.suppress(Stop):
                reference.run(ctx)
    except CannotRun as exc:
        raise SystemExit(f"{prefix}: {exc}") from None
    except (Exception, SystemExit) as exc:  # their code here (argparse exits too): where it broke
        raise SystemExit(f"reference_epochs: the authors' {reference.repo} code failed: "
                         f"{their_failure(exc, ctx.ref)}; their output: {log_path}") from None
    return time.perf_counter() - start


def complete_count(dataset: Dataset, registry: Any, reference: Reference, rate: float, views: Sequence[int],
                   seed: int) -> int:
    """Samples observed in ``views`` under the mask our run of seed ``seed`` draws."""
    mechanism = registry.mechanism(reference.mask)
    mask = make_mask(dataset, mechanism, resolve_options(mechanism.options, {"rate": rate}), seed)
    return int(mask[:, list(views)].all(axis=1).sum())


def bench_command(args: argparse.Namespace, reference: Reference, rate: float) -> str:
    parts = ["python benchmarks/bench_epochs.py", args.method, args.dataset, "--set", reference.bench_set(args.epochs)]
    if rate:
        parts += ["--missing", reference.mask, "--missing-rate", f"{rate:g}"]
    if rate and reference.mask_seed:
        parts += ["--seed", str(reference.mask_seed)]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.data_dir:
        parts += ["--data-dir", args.data_dir]
    return " ".join(parts)


def stage_line(stage: str, values: Sequence[float]) -> str:
    rest = values[1:] or values  # as bench_epochs: the first epoch pays one-off costs
    return f"  {stage:<14}{summary(values)}  mean {statistics.mean(rest):8.3f} s"


def report(args: argparse.Namespace, reference: Reference, ctx: Context, registry: Any, total: float,
           log_path: Path) -> None:
    dataset = ctx.dataset
    print(f"reference {args.method} ({reference.repo} in {ctx.ref}) on {dataset.name} (N={dataset.n_samples}, "
          f"dims={dataset.dims}, K={dataset.n_clusters}), missing rate {ctx.missing_rate:g}, cpu, fp32, "
          f"{torch.get_num_threads()} threads")
    print(f"their run total {total:.1f} s (their output: {log_path})")
    if ctx.their_args:
        print(f"  their command line ended with: {' '.join(ctx.their_args)}")
    for stage, values in ctx.timings.stages.items():
        if values:
            print(stage_line(stage, values))
    for note in ctx.timings.notes.values():
        print(f"  {note}")
    if args.full:
        print(f"  their evaluation: {their_metrics(log_path)}")
    our_seed = (args.seed or 0) if args.full else reference.mask_seed
    if ctx.missing_rate:
        views = reference.views or range(dataset.n_views)
        count = complete_count(dataset, registry, reference, ctx.missing_rate, views, our_seed)
        print(f"  ours: {count} samples observed in views {', '.join(map(str, views))} under the mask of the "
              f"command below")
    print(f"  note: {reference.note}")
    if args.full:
        print("ours in the same setting, at our default (their) schedule:")
        print("  " + reference.full_run.format(dataset=args.dataset, rate=ctx.missing_rate, seed=our_seed))
    else:
        print("ours, same dataset and stage lengths:")
        print(f"  {bench_command(args, reference, ctx.missing_rate)}")


def their_metrics(log_path: Path) -> str:
    """The last metrics line their evaluation printed (``ACC = a NMI = b PUR = c``, as DSIMVC's and
    CVCL's overall line; CVCL's per-view lines read ``ACC1 = ...``)."""
    found = re.findall(r"ACC = ([0-9.]+) NMI = ([0-9.]+) PUR = ([0-9.]+)", log_path.read_text())
    if not found:
        return f"no metrics line in their output ({log_path})"
    acc, nmi, pur = found[-1]
    return f"ACC {acc}  NMI {nmi}  PUR {pur}"


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reference = REFERENCES[args.method]
    prefix = f"reference_epochs: cannot run the authors' {reference.repo} code"
    registry = build_registry([])
    ctx = make_context(args, reference, registry, prefix)
    log_path = ctx.workdir / "output.log"
    total = run_theirs(reference, ctx, args.seed or 0, log_path, prefix)
    report(args, reference, ctx, registry, total, log_path)


if __name__ == "__main__":
    main()
