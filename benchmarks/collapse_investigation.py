"""Why MFLVC (and RAV) collapse on the data of issue 24: trials traced stage by stage.

Runs trials exactly as ``mvbench run`` does (the same runner, records in ``OUT/CASE/trials.jsonl``
with their ``degenerate`` flags), with read-only hooks on the method's model and trainer that,
without gradient and without drawing any random number (so the labels are those of a plain
``mvbench run``; ``--check-hooks`` verifies it on a short schedule), record after every epoch of
every stage (every 25th of pre-training) per view:

- ``rec`` / ``var``: the reconstruction MSE and the MSE of predicting every sample by the mean
  (rec/var ~ 1: the autoencoder outputs the mean sample, nothing sample-specific);
- ``z_spread``: std of Z across samples relative to its RMS row norm (mvbench.degeneracy);
  ``|z|``: the mean row norm of Z;
- ``h_cos``: mean cosine between the high-level features of two different samples of a view
  (1: every sample has the same H), ``h_pos``: mean cosine of a sample's H in two views;
- ``q_top``: mean largest assignment (1/K uniform), ``h_meanq``: entropy of the mean Q over
  log K, ``used``: clusters used by argmax Q;
- MFLVC's pseudo-labels: cluster sizes of the k-means on MinMax(H) per view.

It also prints the values the contrastive loss takes in a collapsed state, for comparison:
per view pair ``log(2B-1)`` (identical H: every similarity equal) and ``log(2K-1)`` (identical
Q columns). Labels are read only to report NMI beside the label-free quantities.

    python benchmarks/collapse_data.py --out /tmp/collapse
    MVBENCH_DATA=/tmp/collapse OMP_NUM_THREADS=1 nice -n 10 \\
        python benchmarks/collapse_investigation.py --cases mflvc-faces40 --seeds 0 1
    python benchmarks/collapse_investigation.py --check-hooks   # hooks change no label (a minute)
    python benchmarks/collapse_investigation.py --reference-code DIR   # the authors' train.py

``--reference-code DIR`` runs the authors' MFLVC ``train.py`` unchanged (a checkout of
SubmissionsIn/MFLVC in DIR) on both stand-ins, with only its ``load_data`` replaced.
Untraced inputs: each case first prints, per view, how far the samples are from their mean
(``spread``) and what an untrained MFLVC network makes of them (also with the inputs x 30).

Cases (``--cases``, default all): mflvc-faces40, mflvc-faces40-std, mflvc-text544,
mflvc-text544-std, rav-text544 (``-std``: ``dataset.preprocess=standardize``); ``--set
NAME=VALUE`` adds method options (e.g. an ablation), named in the case folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mvbench import api
from mvbench.degeneracy import diagnostics
from mvbench.metrics import nmi
from mvbench.options import split_assignment
from mvbench.registry import get_registry
from mvbench.data.pathdataset import dataset_from_path
from mvbench_plugins.methods import mflvc, rav

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collapse_data  # noqa: E402

CASES = {
    "mflvc-faces40": ("mflvc", "faces40.mat", {}),
    "mflvc-faces40-std": ("mflvc", "faces40.mat", {"preprocess": "standardize"}),
    "mflvc-text544": ("mflvc", "text544.mat", {}),
    "mflvc-text544-std": ("mflvc", "text544.mat", {"preprocess": "standardize"}),
    "rav-text544": ("rav", "text544.mat", {}),
}
PRETRAIN_EVERY = 25


class Tracer:
    """Collects the per-epoch state of one trial through hooks on the method's module."""

    def __init__(self, method: str, labels: np.ndarray) -> None:
        self.method, self.labels = method, labels
        self.model: torch.nn.Module | None = None
        self.views: list[Tensor] = []
        self.rows: list[dict[str, Any]] = []
        self.pseudo: list[dict[str, Any]] = []

    # --- the state of the model on the full data, read-only -------------------------------

    @torch.no_grad()
    def forward(self) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """(Z, Xhat, H, Q) per view; H is what the method contrasts (RAV: the normalised Z)."""
        model, xs = self.model, self.views
        if self.method == "mflvc":
            zs, x_hats = model.autoencoders(xs)
            hs = [model.high_level(z) for z in zs]
            qs = [model.assignments(z) for z in zs]
        else:
            zs, x_hats = model.autoencoder(xs)
            hs = [F.normalize(z, dim=1) for z in zs]
            qs = [model.assign(z) for z in zs]
        return zs, x_hats, hs, qs

    def snapshot(self, stage: str, epoch: int) -> None:
        zs, x_hats, hs, qs = self.forward()
        k = qs[0].shape[1]
        row: dict[str, Any] = {"stage": stage, "epoch": epoch, "views": []}
        for x, z, x_hat, h, q in zip(self.views, zs, x_hats, hs, qs):
            h_mean = h.mean(dim=0)
            n = h.shape[0]
            # Mean cosine over pairs of different samples: (||sum h||^2 - n) / (n (n - 1)).
            h_cos = float(((h_mean * h_mean).sum() * n * n - n) / (n * (n - 1)))
            p = q.mean(dim=0)
            row["views"].append({
                "rec": float(F.mse_loss(x_hat, x)), "var": float(((x - x.mean(0)) ** 2).mean()),
                "z_spread": diagnostics(z)["embedding_relative_std"], "z_norm": float(z.norm(dim=1).mean()),
                "h_cos": h_cos,
                "q_top": float(q.amax(dim=1).mean()),
                "h_meanq": float(-(p * p.clamp_min(1e-30).log()).sum() / math.log(k)),
                "used": int(q.argmax(dim=1).unique().numel()),
            })
        row["h_pos"] = [float((hs[v] * hs[w]).sum(1).mean()) for v in range(len(hs)) for w in range(v + 1, len(hs))]
        q_mean = torch.stack(qs).mean(0)
        pred = q_mean.argmax(dim=1).cpu().numpy()
        row["used"] = int(len(np.unique(pred)))
        row["nmi"] = float(nmi(self.labels, pred))
        self.rows.append(row)

    # --- hooks -------------------------------------------------------------------------------

    def install(self, module: Any) -> Callable[[], None]:
        """Patch ``module``'s model class, Trainer and (MFLVC) pseudo_labels; returns the undo."""
        tracer = self
        model_name = "MFLVCNet" if self.method == "mflvc" else "RAVModel"
        originals = {name: getattr(module, name) for name in (model_name, "Trainer", "pseudo_labels")
                     if hasattr(module, name)}
        base_model, base_trainer = originals[model_name], originals["Trainer"]

        class TracedModel(base_model):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                tracer.model = self

        class TracedTrainer(base_trainer):  # type: ignore[misc, valid-type]
            def run_stage(self, name: str, epochs: int, step: Any, **kwargs: Any) -> Any:
                self._traced_stage, self._traced_epoch = name, 0
                out = super().run_stage(name, epochs, step, **kwargs)
                if epochs and self._traced_epoch % PRETRAIN_EVERY and name == "pretrain":
                    tracer.snapshot(name, self._traced_epoch)  # the stage's last epoch
                return out

            def _epoch(self, batches: Any, step: Any) -> dict[str, float]:
                means = super()._epoch(batches, step)
                self._traced_epoch += 1
                if self._traced_stage != "pretrain" or self._traced_epoch % PRETRAIN_EVERY == 0:
                    tracer.snapshot(self._traced_stage, self._traced_epoch)
                return means

        setattr(module, model_name, TracedModel)
        setattr(module, "Trainer", TracedTrainer)
        if "pseudo_labels" in originals:
            def traced_pseudo_labels(*args: Any, **kwargs: Any) -> list[Tensor]:
                found = originals["pseudo_labels"](*args, **kwargs)
                for v, labels in enumerate(found):
                    labels = labels.cpu().numpy()
                    tracer.pseudo.append({"view": v, "sizes": sorted(np.bincount(labels).tolist(), reverse=True),
                                          "nmi": float(nmi(tracer.labels, labels))})
                return found
            setattr(module, "pseudo_labels", traced_pseudo_labels)

        def undo() -> None:
            for name, value in originals.items():
                setattr(module, name, value)
        return undo


def traced_run(method: str, data: Path, dataset_options: Mapping[str, Any], options: Mapping[str, Any],
               seeds: Sequence[int], out: Path, *, trace: bool = True) -> list[tuple[dict[str, Any], Tracer]]:
    """``mvbench run -m METHOD -d DATA --seeds ... --out OUT`` in this process, each trial
    traced (``trace=False``: no hooks at all). Returns (record, tracer) per seed."""
    module = mflvc if method == "mflvc" else rav
    registry = get_registry()
    spec = registry.methods[method]
    labels = dataset_from_path(data, dataset_options).labels
    results = []
    for seed in seeds:
        tracer = Tracer(method, labels)

        def fit_predict(inp: Any, tracer: Tracer = tracer) -> Any:
            tracer.views = [x.float() for x in inp.views]
            return spec.fit_predict(inp)

        undo = tracer.install(module) if trace else (lambda: None)
        registry.methods[method] = dataclasses.replace(spec, fit_predict=fit_predict) if trace else spec
        try:
            frame = api.run(method, str(data), seeds=[seed], options=dict(options),
                            dataset_options=dict(dataset_options), device="cpu", out=out)
        finally:
            undo()
            registry.methods[method] = spec
        record = api.records(out).query("seed == @seed").iloc[-1].to_dict()
        assert frame.iloc[0]["trial_key"] == record["trial_key"]
        if trace and not tracer.rows:  # mvbench run resumes: a trial recorded ok is not rerun
            raise SystemExit(f"{method} seed {seed} is already recorded in {out}; give another --out to trace it")
        results.append((record, tracer))
    return results


# --- reporting ------------------------------------------------------------------------------

def collapse_values(method: str, n: int, n_views: int, k: int, batch_size: int) -> dict[str, float]:
    """The per-batch contrastive loss of a collapsed state, summed over view pairs."""
    b = n if n < batch_size else batch_size
    pairs = n_views * (n_views - 1) // 2
    return {"B": b, "pairs": pairs, "feature log(2B-1)": pairs * math.log(2 * b - 1),
            "label log(2K-1)": pairs * math.log(2 * k - 1)}


def _fmt(values: Sequence[float], spec: str = ".3f") -> str:
    return "/".join(format(v, spec) for v in values)


def print_trace(case: str, record: Mapping[str, Any], tracer: Tracer) -> None:
    print(f"\n== {case} seed {record['seed']}: ACC {record['acc']:.4f} NMI {record['nmi']:.4f}; "
          f"degenerate: {record.get('degenerate') or 'no'}")
    extras = record.get("extras") or {}
    print(f"   diagnostics: {extras.get('diagnostics')}")
    history = extras.get("loss_history") or {}
    parts = extras.get("loss_parts") or {}
    for stage, losses in history.items():
        losses = losses.get("total") if isinstance(losses, Mapping) else losses
        if losses:
            shown = [losses[i] for i in sorted({0, 1, 4, 9, 14, 19, 29, len(losses) - 1}) if i < len(losses)]
            print(f"   loss {stage}: epochs 1,2,5,10,15,20,30,last = {_fmt(shown, '.5f')}")
    for stage, by_part in parts.items():
        for part, values in by_part.items():
            if values and values[0] is not None:
                print(f"     {stage}.{part}: first {values[0]:.5f} last {values[-1]:.5f}")
    print("   stage        epoch  rec/var per view         z_spread              |z|                   "
          "h_cos                 h_pos        q_top            H(mean Q)/logK   used  nmi")
    for row in tracer.rows:
        views = row["views"]
        print(f"   {row['stage']:<12} {row['epoch']:>5}  "
              f"{_fmt([v['rec'] / max(v['var'], 1e-30) for v in views]):<24} "
              f"{_fmt([v['z_spread'] for v in views]):<21} {_fmt([v['z_norm'] for v in views], '.1f'):<21} "
              f"{_fmt([v['h_cos'] for v in views], '.4f'):<21} "
              f"{_fmt(row['h_pos']):<12} {_fmt([v['q_top'] for v in views]):<16} "
              f"{_fmt([v['h_meanq'] for v in views]):<16} {row['used']:>4}  {row['nmi']:.3f}")
    for p in tracer.pseudo:
        print(f"   pseudo-labels view {p['view']}: {len(p['sizes'])} clusters, sizes {p['sizes'][:8]}"
              f"{'...' if len(p['sizes']) > 8 else ''}; nmi {p['nmi']:.3f}")


def data_summary(path: Path, dataset_options: Mapping[str, Any]) -> None:
    """How far the samples are from their mean, per view, before any training."""
    dataset = dataset_from_path(path, dataset_options)
    print(f"\n{path.name} {dict(dataset_options) or ''}: N {len(dataset.labels)}, K {dataset.n_clusters}")
    for v, x in enumerate(dataset.views):
        t = torch.as_tensor(x, dtype=torch.float64)
        std = t.std(dim=0)
        print(f"   view {v}: d {t.shape[1]}, mean {float(t.mean()):.3f}, "
              f"non-zero {float((t != 0).double().mean()):.3f}, "
              f"row norm {float(t.norm(dim=1).mean()):.3f}, spread {diagnostics(t)['embedding_relative_std']:.3f}, "
              f"dims with std < 0.05: {float((std < 0.05).double().mean()):.2f}")
    for label, views in (("as loaded", dataset.views), ("x 30", [30 * x for x in dataset.views])):
        state = initial_state(views, dataset.labels, dataset.n_clusters)
        views_state = state["views"]
        print(f"   untrained MFLVC network, inputs {label}: z_spread {_fmt([v['z_spread'] for v in views_state])}, "
              f"h_cos {_fmt([v['h_cos'] for v in views_state], '.4f')}")


def initial_state(views: Sequence[np.ndarray], labels: np.ndarray, n_clusters: int, seed: int = 0) -> dict[str, Any]:
    """The state of an untrained MFLVC network (the faithful shapes, torch seed ``seed``) on
    ``views``: how much of the samples' differences survive the randomly initialised layers."""
    torch.manual_seed(seed)
    tracer = Tracer("mflvc", labels)
    tracer.model = mflvc.MFLVCNet([x.shape[1] for x in views], n_clusters, hidden=(500, 500, 2000),
                                  feature_dim=512, high_dim=128)
    tracer.views = [torch.as_tensor(x, dtype=torch.float32) for x in views]
    tracer.snapshot("init", 0)
    return tracer.rows[0]


def check_hooks(data_dir: Path) -> None:
    """The hooks change no label: a short MFLVC and RAV run with and without them (records in
    a temporary folder, so that nothing is resumed)."""
    short = {"mflvc": {"pre_epochs": 3, "con_epochs": 3, "tune_epochs": 3, "kmeans_n_init": 3},
             "rav": {"pre_epochs": 3, "epochs": 3}}
    for method, options in short.items():
        data = data_dir / "faces40.mat"
        with tempfile.TemporaryDirectory() as folder:
            (plain, _), (traced, tracer) = (traced_run(method, data, {}, options, [0], Path(folder) / str(trace),
                                                       trace=trace)[0] for trace in (False, True))
        same = plain["labels_sha256"] == traced["labels_sha256"]
        print(f"{method}: labels {'identical' if same else 'DIFFER'} with and without hooks "
              f"({len(tracer.rows)} states traced)")
        if not same or not tracer.rows:
            raise SystemExit(1)


def run_reference_code(repo: Path, data: Path, name: str, workdir: Path) -> None:
    """The authors' MFLVC ``train.py``, unchanged, on ``data``: its ``load_data`` is replaced by
    one that returns the file's views as stored (a user's own loader), and ``--dataset NAME``
    (one of its names) picks its seed and con_epochs. Prints its log's last lines and the
    number of clusters its saved model predicts."""
    import contextlib
    import io
    import runpy
    import types

    from torch.utils.data import Dataset as TorchDataset

    dataset = dataset_from_path(data, {})
    views = [np.ascontiguousarray(x, dtype=np.float32) for x in dataset.views]

    class FileDataset(TorchDataset):
        def __len__(self) -> int:
            return len(dataset.labels)

        def __getitem__(self, idx: int) -> Any:
            return ([torch.from_numpy(x[idx]) for x in views], torch.tensor(dataset.labels[idx]),
                    torch.tensor(idx).long())

    loader = types.ModuleType("dataloader")
    # train.py calls load_data(name) -> (dataset, dims, views, samples, classes).
    loader.load_data = lambda _name: (  # type: ignore[attr-defined]
        FileDataset(), [x.shape[1] for x in views], len(views), len(dataset.labels), dataset.n_clusters)
    workdir.mkdir(parents=True, exist_ok=True)
    saved_argv, saved_cwd, saved_path = sys.argv, os.getcwd(), list(sys.path)
    sys.modules["dataloader"] = loader
    sys.path.insert(0, str(repo))
    sys.argv = ["train.py", "--dataset", name]
    log = io.StringIO()
    try:
        os.chdir(workdir)
        with contextlib.redirect_stdout(log):
            runpy.run_path(str(repo / "train.py"), run_name="__main__")
        network = __import__("network")
        model = network.Network(len(views), [x.shape[1] for x in views], 512, 128, dataset.n_clusters, "cpu")
        model.load_state_dict(torch.load(workdir / "models" / f"{name}.pth"))
        with torch.no_grad():
            _, qs, _, _ = model([torch.from_numpy(x) for x in views])
        pred = torch.stack(qs).mean(0).argmax(1).numpy()
    finally:
        os.chdir(saved_cwd)
        sys.argv, sys.path[:] = saved_argv, saved_path
        sys.modules.pop("dataloader", None)
    lines = [line for line in log.getvalue().splitlines() if line.strip()]
    epochs = [line for line in lines if line.startswith("Epoch")]
    print(f"\n== the authors' train.py on {data.name} (--dataset {name}: its seed and con_epochs)")
    for i in (0, 199, 200, 214, 249, 250, len(epochs) - 1):
        if i < len(epochs):
            print(f"   {epochs[i]}")
    print(f"   {[line for line in lines if line.startswith('ACC')][-1]}; clusters used: {len(np.unique(pred))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of " + ", ".join(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="extra method options")
    parser.add_argument("--data", default=os.environ.get("MVBENCH_DATA", "/tmp/collapse"),
                        help="folder of faces40.mat and text544.mat (made if absent)")
    parser.add_argument("--out", default="/tmp/collapse/runs")
    parser.add_argument("--check-hooks", action="store_true", help="only check that tracing changes no label")
    parser.add_argument("--reference-code", metavar="DIR", default=None,
                        help="instead: run the authors' MFLVC train.py (a checkout of SubmissionsIn/MFLVC "
                             "in DIR) on faces40 and text544")
    args = parser.parse_args()
    data_dir, out = Path(args.data), Path(args.out)
    if not (data_dir / "faces40.mat").is_file() or not (data_dir / "text544.mat").is_file():
        sys.argv = ["collapse_data.py", "--out", str(data_dir)]
        collapse_data.main()
    if args.check_hooks:
        check_hooks(data_dir)
        return
    if args.reference_code:
        for file in ("faces40.mat", "text544.mat"):
            run_reference_code(Path(args.reference_code), data_dir / file, "MNIST-USPS", out / "reference")
        return
    options = dict(split_assignment(item) for item in args.set)
    suffix = "".join(f"-{k}={v}" for k, v in sorted(options.items()))
    for case in args.cases.split(","):
        method, file, dataset_options = CASES[case]
        data = data_dir / file
        data_summary(data, dataset_options)
        dataset = dataset_from_path(data, dataset_options)
        spec = get_registry().methods[method]
        batch = int(options.get("batch_size", dict((o.name, o.default) for o in spec.options)["batch_size"]))
        print("   collapsed-state contrastive values:",
              collapse_values(method, len(dataset.labels), len(dataset.views), dataset.n_clusters, batch))
        for record, tracer in traced_run(method, data, dataset_options, options, args.seeds, out / (case + suffix)):
            print_trace(case + suffix, record, tracer)
            trace_file = out / (case + suffix) / f"trace-seed{record['seed']}.json"
            trace_file.write_text(json.dumps({"rows": tracer.rows, "pseudo_labels": tracer.pseudo}, indent=1))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
