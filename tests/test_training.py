"""The shared training scaffold (mvbench.training) on a toy model: stages and epochs, one
optimiser across stages, the NaN guard of the progress, one read per epoch, the per-epoch
hook, steps that optimise by themselves, and the extras layout."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
import torch
from torch import Tensor, nn

from mvbench.errors import NonFiniteLossError
from mvbench.progress import QuietProgress
from mvbench.nn import torch_generator
from mvbench.training import Trainer, shuffled_batches

X = torch.linspace(-1, 1, 24)[:, None]
Y = 3 * X + 1


class RecordingProgress(QuietProgress):
    """Logs what the scaffold reports (and keeps the NaN guard)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple] = []

    def stage(self, name: str, total: int) -> None:
        super().stage(name, total)
        self.log.append(("stage", name, total))

    def epoch(self, loss: float | None = None) -> None:
        self.log.append(("epoch", loss))
        super().epoch(loss)


def toy(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(1, 1)


def fixed_batches(size: int):
    """File-order index batches, the same every epoch."""
    return lambda: torch.arange(len(X)).split(size)


def mse_step(model: nn.Module):
    def step(idx: Tensor) -> dict[str, Tensor]:
        err = model(X[idx]) - Y[idx]
        mse = (err**2).mean()
        return {"total": mse, "mse": mse, "bias": model.bias.detach().sum()}
    return step


def test_stages_record_epoch_means_and_seconds_in_the_extras_layout():
    model, progress = toy(), RecordingProgress()
    trainer = Trainer.with_adam(model, progress, lr=0.1, batches=fixed_batches(8))

    # The same run by hand: per batch the loss before the update, per epoch their mean.
    reference = toy()
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.1)
    expected = []
    for _ in range(3):
        losses = []
        for idx in torch.arange(len(X)).split(8):
            loss = ((reference(X[idx]) - Y[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        expected.append(sum(losses) / len(losses))

    parts = trainer.run_stage("fit", 3, mse_step(model))
    trainer.run_stage("plain", 2, lambda idx: {"total": ((model(X[idx]) - Y[idx]) ** 2).mean()})
    extras = trainer.extras

    assert set(extras) == {"loss_history", "loss_parts", "epoch_seconds"}
    assert extras["loss_history"]["fit"] == pytest.approx(expected, rel=1e-6)
    assert extras["loss_parts"] == {"fit": parts}  # a stage without parts has no entry
    assert parts["mse"] == pytest.approx(expected, rel=1e-6) and len(parts["bias"]) == 3
    assert len(extras["loss_history"]["plain"]) == 2
    assert {k: len(v) for k, v in extras["epoch_seconds"].items()} == {"fit": 3, "plain": 2}
    assert all(s >= 0 for s in extras["epoch_seconds"]["fit"])
    stages = [entry for entry in progress.log if entry[0] == "stage"]
    assert stages == [("stage", "fit", 3), ("stage", "plain", 2)]
    assert [entry[1] for entry in progress.log if entry[0] == "epoch"][:3] == extras["loss_history"]["fit"]


def test_the_trained_parameters_match_a_hand_written_loop():
    model = toy()
    trainer = Trainer(QuietProgress(), torch.optim.SGD(model.parameters(), lr=0.05), fixed_batches(6))
    trainer.run_stage("fit", 2, mse_step(model))
    reference = toy()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05)
    for _ in range(2):
        for idx in torch.arange(len(X)).split(6):
            optimizer.zero_grad()
            ((reference(X[idx]) - Y[idx]) ** 2).mean().backward()
            optimizer.step()
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)


def test_one_optimiser_serves_every_stage():
    model = toy()
    trainer = Trainer.with_adam(model, QuietProgress(), lr=0.01, weight_decay=0.5, batches=fixed_batches(8))
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.5
    trainer.run_stage("a", 2, mse_step(model))  # 3 batches per epoch
    trainer.run_stage("b", 1, mse_step(model), batches=fixed_batches(12))  # 2 batches
    # Adam's step counter runs on across the stages: its moments were never reset.
    assert int(trainer.optimizer.state[model.weight]["step"]) == 2 * 3 + 2


def test_a_nan_loss_aborts_through_the_progress_after_the_epoch():
    model, seen = toy(), []

    def step(idx: Tensor) -> dict[str, Tensor]:
        seen.append(idx)
        loss = ((model(X[idx]) - Y[idx]) ** 2).mean()
        return {"total": loss * torch.nan if len(seen) == 2 else loss}

    trainer = Trainer.with_adam(model, QuietProgress(), lr=0.1, batches=fixed_batches(8))
    with pytest.raises(NonFiniteLossError, match="stage 'diverge'"):
        trainer.run_stage("diverge", 5, step)
    assert len(seen) == 3  # the first epoch ran to its end; no second epoch started


def count_reads(fn) -> Counter:
    """Tensor reads back to Python made outside torch (each waits for the device on a GPU)."""
    counts: Counter = Counter()
    names = ("__float__", "item", "tolist", "__bool__", "__int__")
    originals = {name: getattr(Tensor, name) for name in names}

    def spy(name):
        def read(self, *args, **kwargs):
            if not sys._getframe(1).f_globals.get("__name__", "").startswith("torch"):
                counts[name] += 1
            return originals[name](self, *args, **kwargs)
        return read

    try:
        for name in names:
            setattr(Tensor, name, spy(name))
        fn()
    finally:
        for name, original in originals.items():
            setattr(Tensor, name, original)
    return counts


def test_losses_are_read_once_per_epoch_whatever_the_number_of_batches():
    def run(batch_size: int) -> Counter:
        model = toy()
        trainer = Trainer.with_adam(model, QuietProgress(), lr=0.1, batches=fixed_batches(batch_size))
        return count_reads(lambda: trainer.run_stage("fit", 3, mse_step(model)))

    assert run(24) == run(4) == Counter(tolist=3)


def test_epoch_means_are_summed_in_float64():
    # 0.1 in float32, 10 batches: a float32 running sum drifts, float64 gives the Python sum.
    value = torch.tensor(0.1, dtype=torch.float32)
    trainer = Trainer(QuietProgress(), None, lambda: range(10))
    trainer.run_stage("sum", 1, lambda _: {"total": value})
    assert trainer.extras["loss_history"]["sum"] == [sum([float(value)] * 10) / 10]


def test_the_hook_runs_before_each_epoch_and_the_step_sees_its_context():
    model, calls = toy(), []
    context = {"epoch": -1}

    def hook() -> None:
        context["epoch"] += 1
        calls.append(("hook", context["epoch"]))

    def step(idx: Tensor) -> dict[str, Tensor]:
        calls.append(("step", context["epoch"]))
        return {"total": ((model(X[idx]) - Y[idx]) ** 2).mean()}

    trainer = Trainer.with_adam(model, QuietProgress(), lr=0.1, batches=fixed_batches(12))
    trainer.run_stage("with_hook", 2, step, before_epoch=hook)
    trainer.run_stage("without", 1, step)
    assert calls == [("hook", 0), ("step", 0), ("step", 0), ("hook", 1), ("step", 1), ("step", 1),
                     ("step", 1), ("step", 1)]


def test_a_step_that_optimises_by_itself_is_only_recorded():
    model = toy()
    own = torch.optim.SGD(model.parameters(), lr=0.05)

    def step(full_batch: None) -> dict[str, Tensor]:
        loss = ((model(X) - Y) ** 2).mean()
        own.zero_grad()
        loss.backward()
        own.step()
        return {"total": loss.detach(), "weight": model.weight.detach().sum()}

    trainer = Trainer(QuietProgress(), None)
    parts = trainer.run_stage("full", 3, step, batches=lambda: [None])
    reference = toy()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05)
    for _ in range(3):
        ref_opt.zero_grad()
        ((reference(X) - Y) ** 2).mean().backward()
        ref_opt.step()
    assert torch.equal(model.weight, reference.weight)  # stepped once per epoch, by the step only
    assert len(trainer.extras["loss_history"]["full"]) == 3 and len(parts["weight"]) == 3


def test_a_loss_with_a_gradient_needs_an_optimiser():
    model = toy()
    trainer = Trainer(QuietProgress(), None, fixed_batches(24))
    with pytest.raises(ValueError, match="no optimiser"):
        trainer.run_stage("fit", 1, mse_step(model))


def test_a_loss_without_gradient_is_not_optimised():
    model = toy()
    before = [p.clone() for p in model.parameters()]
    trainer = Trainer.with_adam(model, QuietProgress(), lr=0.1, batches=fixed_batches(8))
    trainer.run_stage("off", 2, lambda idx: {"total": torch.zeros(())})  # every loss term switched off
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert trainer.extras["loss_history"]["off"] == [0.0, 0.0]


def test_an_epoch_without_batches_records_none_and_parts_stay_aligned():
    batches = iter([[0], [], [1]])
    progress = RecordingProgress()
    trainer = Trainer(progress, None, lambda: [torch.tensor(b) for b in next(batches)])
    parts = trainer.run_stage("sparse", 3, lambda b: {"total": b.float().sum(), "twice": 2 * b.float().sum()})
    assert trainer.extras["loss_history"]["sparse"] == [0.0, None, 1.0]
    assert parts == {"twice": [0.0, None, 2.0]}
    assert ("epoch", None) in progress.log


def test_zero_epochs_record_an_empty_stage():
    trainer = Trainer(RecordingProgress(), None, lambda: [])
    assert trainer.run_stage("skipped", 0, lambda b: {}) == {}
    assert trainer.extras == {"loss_history": {"skipped": []}, "loss_parts": {}, "epoch_seconds": {"skipped": []}}
    assert trainer.progress.log == [("stage", "skipped", 0)]


def test_a_stage_needs_a_batch_source():
    with pytest.raises(ValueError, match="no batch source"):
        Trainer(QuietProgress(), None).run_stage("fit", 1, lambda b: {})


def test_timed_records_one_off_steps_and_can_show_them():
    progress = RecordingProgress()
    trainer = Trainer(progress, None)
    assert trainer.timed("kmeans", lambda: 7, show=True) == 7
    assert trainer.timed("matching", lambda: None) is None
    trainer.timed("matching", lambda: None)
    assert {k: len(v) for k, v in trainer.extras["epoch_seconds"].items()} == {"kmeans": 1, "matching": 2}
    assert progress.log == [("stage", "kmeans", 1), ("epoch", None)]  # only the shown one


def test_shuffled_batches_draw_a_new_seeded_permutation_every_epoch():
    source = shuffled_batches(10, 4, torch_generator(3), device="cpu")
    first, second = list(source()), list(source())
    assert [len(b) for b in first] == [4, 4]  # the last partial batch is dropped
    assert not torch.equal(torch.cat(first), torch.cat(second))
    again = shuffled_batches(10, 4, torch_generator(3), device="cpu", drop_last=False)
    kept = list(again())
    assert torch.equal(torch.cat(kept[:2]), torch.cat(first)) and sorted(torch.cat(kept).tolist()) == list(range(10))
