"""Snapshots of long trials (mvbench.checkpoint through mvbench.training.Trainer): a trial
interrupted mid-stage and run again resumes from its snapshots and ends exactly as the
uninterrupted trial; snapshots of other code are set aside; a sweep keeps them beside its records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mvbench import runner, sweep
from mvbench.checkpoint import TrialCheckpoint
from mvbench.progress import InterruptingProgress
from mvbench.registry import get_registry
from mvbench.runner import DatasetCache, Settings, Trial, resolve, run_resolved

from run_helpers import run_trials

TINY_DATA = {"samples": 60, "dims": (6,)}
# Two stages of 2 and 3 epochs; the fifth epoch overall is the second of the second stage.
METHODS = {
    "dimvc-hia": ({"pre_epochs": 2, "epochs": 3, "hidden": (16,), "latent_dim": 8, "low_dim": 8,
                   "batch_size": 20}, "mcar", {"rate": 0.5}, ["pretrain epoch 2 of 2", "train epoch 1 of 3"]),
    "gcfaggmvc": ({"pre_epochs": 2, "fine_tune_epochs": 3, "hidden": (16,), "feature_dim": 8, "high_dim": 8,
                   "ffn_dim": 8, "kmeans_n_init": 2, "batch_size": 20}, "none", {},
                  ["pretrain epoch 2 of 2", "fine_tune epoch 1 of 3"]),
    "cvcl": ({"pretrain_epochs": 2, "finetune_epochs": 3, "hidden": (16,), "feature_dim": 8, "head_dim": 8,
              "batch_size": 20}, "none", {}, ["pretrain epoch 2 of 2", "finetune epoch 1 of 3"]),
}


def _resolved(method: str):
    options, missing, missing_options, _ = METHODS[method]
    return resolve(Trial(method=method, dataset="synthetic", seed=3, missing=missing, method_options=options,
                         dataset_options=TINY_DATA, missing_options=missing_options), get_registry())


def _every_epoch(folder: Path) -> Settings:
    return Settings(device="cpu", checkpoints=str(folder), checkpoint_every=0.0)


def _interrupted(method: str, settings: Settings) -> list[str]:
    """Run ``method``'s trial until the second epoch of its second stage ends; the snapshot files."""
    with pytest.raises(KeyboardInterrupt):
        run_resolved(_resolved(method), settings, DatasetCache(None), progress=InterruptingProgress(4))
    return sorted(path.name for path in Path(settings.checkpoints).glob("*/*.pt"))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_an_interrupted_trial_resumes_and_ends_as_the_uninterrupted_one(method, tmp_path):
    whole = run_resolved(_resolved(method), Settings(device="cpu"), DatasetCache(None))
    settings = _every_epoch(tmp_path / "checkpoints")
    stages = list(whole["extras"]["loss_history"])
    assert _interrupted(method, settings) == [f"00-{stages[0]}.pt", f"01-{stages[1]}.pt"]
    resumed = run_resolved(_resolved(method), settings, DatasetCache(None))
    assert resumed["status"] == "ok", resumed.get("error")
    assert resumed["labels_sha256"] == whole["labels_sha256"]
    assert resumed["extras"]["loss_history"] == whole["extras"]["loss_history"]
    assert [len(resumed["extras"]["epoch_seconds"][stage]) for stage in stages] == [2, 3]
    assert resumed["resumed"]["from"] == METHODS[method][3]
    assert resumed["resumed"]["earlier_seconds"] > 0
    assert resumed["train_time"] > resumed["resumed"]["earlier_seconds"]
    assert not any((tmp_path / "checkpoints").iterdir())  # the record is written: snapshots deleted
    assert "resumed" not in whole


def test_snapshots_of_other_code_are_set_aside(tmp_path, monkeypatch, capsys):
    whole = run_resolved(_resolved("cvcl"), Settings(device="cpu"), DatasetCache(None))
    settings = _every_epoch(tmp_path / "checkpoints")
    _interrupted("cvcl", settings)
    versions = runner.versions()
    monkeypatch.setattr(runner, "versions", lambda: {**versions, "git_commit": "another commit"})
    again = run_resolved(_resolved("cvcl"), settings, DatasetCache(None))
    assert "resumed" not in again and again["labels_sha256"] == whole["labels_sha256"]
    assert capsys.readouterr().out.count("made by other code or hardware; the stage starts over") == 2


def test_a_snapshot_of_another_stage_length_is_set_aside_and_not_counted_as_resumed(tmp_path, capsys):
    written = TrialCheckpoint(tmp_path, {"trial": "k"}, every=0.0)
    written.write(0, "train", {"epoch": 2, "epochs": 3, "generators": []})
    again = TrialCheckpoint(tmp_path, {"trial": "k"})
    assert again.read(0, "train", epochs=4, generators=0) is None
    assert again.read(0, "train", epochs=3, generators=1) is None
    assert again.resumed == [] and again.earlier_seconds == 0.0
    assert capsys.readouterr().out.count("was made for a stage of 3 epochs and 0 random streams") == 2
    assert again.read(0, "train", epochs=3, generators=0)["epoch"] == 2
    assert again.resumed == ["train epoch 2 of 3"]


def test_a_failed_trial_deletes_its_snapshots(tmp_path):
    settings = _every_epoch(tmp_path / "checkpoints")
    _interrupted("cvcl", settings)
    failing = InterruptingProgress(5, RuntimeError)
    record = run_resolved(_resolved("cvcl"), settings, DatasetCache(None), progress=failing)
    assert record["status"] == "failed" and "RuntimeError" in record["error"]
    assert not any((tmp_path / "checkpoints").iterdir())


def test_a_short_stage_writes_no_snapshot(tmp_path):
    checkpoint = TrialCheckpoint(tmp_path / "k", {"trial_key": "k"}, every=3600.0)
    assert not checkpoint.due(stage_end=False) and not checkpoint.due(stage_end=True)
    assert TrialCheckpoint(tmp_path / "k", {"trial_key": "k"}, every=0.0).due(stage_end=True)


def test_a_sweep_keeps_snapshots_beside_its_records(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sweep, "run_resolved", lambda resolved, settings, *args, **kwargs: seen.append(
        settings.checkpoints) or run_resolved(resolved, settings, *args, **kwargs))
    [record] = run_trials([Trial(method="kmeans", dataset="synthetic", seed=0, dataset_options=TINY_DATA,
                                 method_options={"n_init": 1})], tmp_path / "out", plugins=())
    assert record["status"] == "ok"
    assert seen == [str(tmp_path / "out" / "checkpoints")]
    assert np.isfinite(record["train_time"])


def test_the_command_line_sets_the_interval(cli, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sweep, "run_resolved", lambda resolved, settings, *args, **kwargs: seen.append(
        (settings.checkpoints, settings.checkpoint_every)) or run_resolved(resolved, settings, *args, **kwargs))
    code, _, err = cli("run", "-m", "kmeans", "-d", "synthetic", "--seeds", "1", "--set", "dataset.samples=60",
                       "--checkpoint-every", "0.5", "--out", str(tmp_path / "out"), "-q")
    assert code == 0, err
    assert seen == [(str(tmp_path / "out" / "checkpoints"), 30.0)]
    code, _, err = cli("sweep", "ci", "--checkpoint-every", "-1", "--dry-run")
    assert code == 2 and err.strip() == "error: --checkpoint-every -1 must be a number of minutes >= 0 (0: every epoch)"


def test_a_dry_run_says_which_trials_resume_and_which_snapshots_are_set_aside(cli, tmp_path):
    from mvbench.api import prepare_sweep
    from mvbench.device import device_name

    out = tmp_path / "out"
    flags = ["--method", "kmeans", "--dataset", "synthetic", "--seeds", "3", "--out", str(out), "--dry-run"]
    code, before, _ = cli("sweep", *flags)
    assert code == 0 and "snapshots" not in before
    keys = [p.key for p in prepare_sweep(get_registry(), methods="kmeans", datasets=["synthetic"], seeds=[0, 1, 2],
                                         out=out).pending]
    here = runner.snapshot_fingerprint(keys[1], runner.versions(), device_name(torch.device("cpu")))
    TrialCheckpoint(out / "checkpoints" / keys[1], here).write(0, "train", {"epoch": 2, "epochs": 5})
    other = {**here, "trial_key": keys[2], "git_commit": "0123456789abcdef"}
    TrialCheckpoint(out / "checkpoints" / keys[2], other).write(1, "tune", {"epoch": 3, "epochs": 4})
    code, after, _ = cli("sweep", *flags)
    lines = after.splitlines()
    assert code == 0
    resume = lines.index(f"1 of the trials to run resume from their snapshots in {out / 'checkpoints'}:")
    assert lines[resume + 1] == "  kmeans (default) on synthetic, none, seed 1: from train epoch 2 of 5"
    assert lines[resume + 2].startswith(f"1 of the trials to run have snapshots in {out / 'checkpoints'} that this "
                                        f"run sets aside")
    short = str(here["git_commit"])[:7]
    assert lines[resume + 3] == (f"  kmeans (default) on synthetic, none, seed 2: tune epoch 3 of 4, made with "
                                 f"commit 0123456 (this run: {short})")


def test_the_estimate_takes_off_the_training_a_resuming_trials_snapshots_hold(tmp_path):
    import json

    from mvbench.api import prepare_sweep
    from mvbench.commands.sweep import estimate
    from mvbench.device import device_name, hardware_name

    registry, cpu = get_registry(), torch.device("cpu")
    prepared = prepare_sweep(registry, methods="kmeans", datasets=["synthetic"], seeds=[0, 1, 2], out=tmp_path)
    finished = {"status": "ok", "method": "kmeans", "dataset": "synthetic", "device": "cpu", "wall_time": 600.0,
                "method_options": {}, "dataset_options": {}, "device_name": f"{hardware_name(cpu)} (1 threads)"}
    prepared.results_file.write_text(json.dumps(finished) + "\n")  # a finished trial of another grid
    keys = [p.key for p in prepared.pending]
    here = runner.snapshot_fingerprint(keys[1], runner.versions(), device_name(cpu))
    for key, made_by in ((keys[1], here), (keys[2], {**here, "trial_key": keys[2], "git_commit": "0123456"})):
        (tmp_path / "checkpoints" / key).mkdir(parents=True)
        torch.save({"fingerprint": made_by, "seconds": 240.0, "epoch": 2, "epochs": 5},
                   tmp_path / "checkpoints" / key / "00-train.pt")
    seconds, line = estimate(prepared.pending, registry, prepared.settings, prepared.results_file)
    assert [seconds[key] for key in keys] == [600.0, 360.0, 600.0]  # the set-aside snapshot counts for nothing
    assert line(1).startswith("estimated time: about 26 min for 3 trials (")
    assert line(1).endswith("; for the 1 trial that resumes from snapshots, less the 4 min of training it holds")


def _leaky_fit(inp):
    """A method that takes snapshots but keeps its batch order's generator from the Trainer."""
    import torch
    from mvbench.nn import torch_generator
    from mvbench.specs import MethodOutput
    from mvbench.training import Trainer, shuffled_batches

    x = inp.views[0]
    torch.manual_seed(inp.seed_for("init"))
    model = torch.nn.Linear(x.shape[1], inp.n_clusters)
    order = torch_generator(inp.seed_for("batches"))
    trainer = Trainer.with_adam(model, inp.progress, lr=0.1, batches=shuffled_batches(x.shape[0], 7, order, device="cpu"),
                                checkpoint=inp.checkpoint)  # generators=[order] left out
    step = lambda idx: {"total": model(x[idx]).logsumexp(dim=1).mean() + model(x[idx])[:, 0].pow(2).mean()}
    trainer.run_stage("a", 2, step)
    trainer.run_stage("b", 2, step)
    return MethodOutput(labels=model(x).argmax(dim=1).numpy(), extras=trainer.extras)


def test_mvbench_check_catches_state_kept_from_the_snapshots():
    from mvbench.conformance import check_method
    from mvbench.specs import MethodSpec

    results = {r.check: r for r in check_method(MethodSpec(name="leaky", fit_predict=_leaky_fit,
                                                           description="test: leaks a generator"))}
    result = results["an interrupted trial resumes to the same labels and losses (if it takes snapshots)"]
    assert not result.ok and "give the Trainer every generator" in result.message
    cvcl = {r.check: r for r in check_method(get_registry().method("cvcl"))}
    assert cvcl["an interrupted trial resumes to the same labels and losses (if it takes snapshots)"].ok
