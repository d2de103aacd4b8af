"""Suite files, grid expansion, trial keys, resume after an interrupt, and the sweep command."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from mvbench.errors import MvbenchError
from mvbench.options import Option
from mvbench.registry import get_registry
from mvbench.results import RECORDS_FILE, append_record, read_records
from mvbench.runner import Settings, Trial, resolve
from mvbench.sweep import DONE, FAILED, SequentialExecutor, expand, plan, run_sweep, to_run
from mvbench.suite import load_suite

from run_helpers import claimed_by_another, kmeans_suite

PLUGIN = "mvbench_sweep_testplugin"
PLUGIN_SOURCE = '''
import numpy as np
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import MethodOutput, MethodSpec

# interrupt_at: the call number that raises KeyboardInterrupt; fail_seed: a seed that fails.
state = {"calls": 0, "interrupt_at": None, "fail_seed": None}


def _fit(inputs):
    state["calls"] += 1
    if state["calls"] == state["interrupt_at"]:
        raise KeyboardInterrupt
    if inputs.seed == state["fail_seed"]:
        raise ValueError("planned failure")
    return MethodOutput(labels=np.arange(inputs.mask.shape[0]) % inputs.n_clusters)


SPEC = MethodSpec(name="counted", fit_predict=_fit, description="test: counts its calls",
                  options=(Option("a", "int", 1, "a number"), Option("b", "str", "x", "a text")))


@hookimpl
def mvbench_methods():
    return [SPEC]
'''
SMALL = {"samples": 30, "dims": [4]}
CPU = Settings(device="cpu")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    sys.path.insert(0, str(folder))
    module = __import__(PLUGIN)
    yield module
    sys.path.remove(str(folder))


@pytest.fixture
def state(plugin):
    plugin.state.update(calls=0, interrupt_at=None, fail_seed=None)
    return plugin.state


@pytest.fixture
def registry(plugin):
    return get_registry((PLUGIN,))


def suite_from(text: str, tmp_path: Path, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


BASIC = """
    [suite]
    seeds = 2
    device = "cpu"

    [method_options.counted]
    a = 5

    [[methods]]
    name = "full"
    method = "counted"

    [[methods]]
    name = "ablation"
    method = "counted"
    options = { b = "y" }

    [[datasets]]
    name = "synthetic"
    options = { samples = 30, dims = [4] }

    [[missing]]
    mechanism = "none"

    [[missing]]
    mechanism = "mcar"
    rates = [0.1, 0.3]
"""


def test_grid_expands_cells_with_seeds_innermost(tmp_path):
    suite = load_suite(suite_from(BASIC, tmp_path))
    items = expand(suite)
    assert suite.name == "demo" and suite.seeds == (0, 1)
    assert len(items) == 2 * 3 * 2  # option sets x missingness settings x seeds
    cells = [(i.trial.missing, i.rate, i.trial.option_set, i.trial.seed) for i in items]
    assert cells[:4] == [("none", 0.0, "full", 0), ("none", 0.0, "full", 1),
                         ("none", 0.0, "ablation", 0), ("none", 0.0, "ablation", 1)]
    assert [i.trial.missing_options for i in items if i.trial.missing == "mcar"][::4] == [{"rate": 0.1}, {"rate": 0.3}]
    ablation = next(i.trial for i in items if i.trial.option_set == "ablation")
    assert ablation.method_options == {"a": 5, "b": "y"}  # [method_options] shared, entry wins
    assert suite.results_file == tmp_path / "results" / "demo" / RECORDS_FILE


def test_grid_blocks_restrict_methods_datasets_and_missingness(tmp_path):
    text = BASIC + """
    [[datasets]]
    name = "synthetic"
    label = "synthetic-4v"
    options = { samples = 30, dims = [4], views = 4 }
    rate = 0.2

    [[grid]]
    methods = ["full"]
    datasets = ["synthetic"]
    missing = [{ mechanism = "none" }]
    """
    items = expand(load_suite(suite_from(text, tmp_path)))
    # "synthetic" names both entries; the label and the nominal rate come from each entry.
    assert [(i.dataset_label, i.rate, i.trial.option_set) for i in items[::2]] == [
        ("synthetic", 0.0, "full"), ("synthetic-4v", 0.0, "full")]


@pytest.mark.parametrize("text, message", [
    ("[suite]\nseed = 2\n", "unknown key in [suite] 'seed' (did you mean 'seeds'?)"),
    ("[suite]\nname = 'other'\n", "differs from the file name"),
    ("[[methods]]\nmethod = 'kmeans'\nopts = {}\n[[datasets]]\nname = 'synthetic'\n",
     "did you mean 'options'?"),
    ("[suite]\nseeds = [1, 1]\n[[methods]]\nmethod = 'kmeans'\n[[datasets]]\nname = 'synthetic'\n",
     "distinct integers"),
    ("[[methods]]\nmethod = 'kmeans'\n[[datasets]]\nname = 'synthetic'\n[[missing]]\nmechanism = 'mcar'\nrates = [2]\n",
     "rate of 'mcar' must be a number in [0, 1]"),
    ("[[methods]]\nmethod = 'kmeans'\n[[datasets]]\nname = 'synthetic'\n[[grid]]\nmethods = ['kmean']\n",
     "did you mean 'kmeans'?"),
])
def test_suite_mistakes_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(MvbenchError) as info:
        load_suite(suite_from(text, tmp_path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_plugins_and_options_fail_before_any_trial_runs(tmp_path, registry, state):
    for wrong, message in [("method = 'kmean'", "unknown method 'kmean' (did you mean 'kmeans'?)"),
                           ("method = 'counted'\noptions = { c = 1 }", "unknown option of method 'counted' 'c'")]:
        text = f"[[methods]]\n{wrong}\n[[datasets]]\nname = 'synthetic'\n"
        suite = load_suite(suite_from(text, tmp_path))
        with pytest.raises(MvbenchError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
            plan(expand(suite), registry, CPU)
    rates_on_none = "[[methods]]\nmethod = 'counted'\n[[datasets]]\nname = 'synthetic'\n" \
                    "[[missing]]\nmechanism = 'none'\nrates = [0.5]\n"
    with pytest.raises(MvbenchError, match="has no rate option"):
        plan(expand(load_suite(suite_from(rates_on_none, tmp_path))), registry, CPU)
    assert state["calls"] == 0


def test_two_option_sets_that_resolve_to_the_same_trial_are_rejected(tmp_path, registry):
    text = ("[[methods]]\nname = 'x'\nmethod = 'counted'\n[[methods]]\nname = 'y'\nmethod = 'counted'\n"
            "options = { a = 1 }\n[[datasets]]\nname = 'synthetic'\n")
    with pytest.raises(MvbenchError, match="'x' on 'synthetic' and 'y' on 'synthetic' resolve to the same trial"):
        plan(expand(load_suite(suite_from(text, tmp_path))), registry, CPU)


def key_of(registry, **options) -> str:
    trial = Trial(method="counted", dataset="synthetic", seed=options.pop("seed", 0),
                  method_options=options, dataset_options=SMALL)
    return resolve(trial, registry).key(torch.device("cpu"), "fp32")


def test_trial_keys_ignore_option_order_and_spelling_but_not_values(registry):
    assert key_of(registry, a=3, b="y") == key_of(registry, b="y", a=3) == key_of(registry, b="y", a="3")
    assert key_of(registry) == key_of(registry, a=1)  # an explicit default is the same trial
    assert len({key_of(registry), key_of(registry, a=2), key_of(registry, seed=1)}) == 3
    trial = Trial(method="counted", dataset="synthetic", seed=0, dataset_options=SMALL)
    resolved = resolve(trial, registry)
    assert resolved.key(torch.device("cpu"), "fp32") != resolved.key(torch.device("cpu"), "bf16")


def test_a_new_option_with_a_default_keeps_the_keys_of_recorded_trials(registry):
    trial = Trial(method="counted", dataset="synthetic", seed=0, method_options={"a": 3}, dataset_options=SMALL)
    before = resolve(trial, registry)
    spec = before.method
    grown = replace(spec, options=(*spec.options, Option("c", "float", 0.5, "a new knob")))
    after = replace(before, method=grown, method_options={**before.method_options, "c": 0.5})
    changed = replace(after, method_options={**after.method_options, "c": 0.7})
    cpu = torch.device("cpu")
    assert after.key(cpu, "fp32") == before.key(cpu, "fp32") != changed.key(cpu, "fp32")


def test_trial_keys_are_stable_across_processes(plugin, registry):
    code = (f"import sys, torch; sys.path.insert(0, {str(Path(plugin.__file__).parent)!r})\n"
            "from mvbench.registry import get_registry\nfrom mvbench.runner import Trial, resolve\n"
            f"t = Trial(method='counted', dataset='synthetic', seed=0, method_options={{'b': 'y', 'a': 3}}, "
            f"dataset_options={SMALL!r})\n"
            f"print(resolve(t, get_registry(({PLUGIN!r},))).key(torch.device('cpu'), 'fp32'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == key_of(registry, a=3, b="y")


def test_resume_after_interrupt_runs_only_what_is_left(tmp_path, registry, state):
    items = expand(load_suite(suite_from(BASIC, tmp_path)))
    results = tmp_path / "out" / RECORDS_FILE
    planned = plan(items, registry, CPU)
    state["interrupt_at"] = 5
    with pytest.raises(KeyboardInterrupt):
        run_sweep(planned, CPU, (PLUGIN,), SequentialExecutor(), results, suite="demo")
    kept = read_records(results)
    assert len(kept) == 4 and all(r["status"] == "ok" and r["suite"] == "demo" for r in kept)
    assert [r["option_set"] for r in kept] == ["full", "full", "ablation", "ablation"]

    again = plan(items, registry, CPU, read_records(results))
    assert [p.state for p in again].count(DONE) == 4
    pending = to_run(again, retry_failed=False)
    assert [p.key for p in pending] == [p.key for p in again[4:]]
    run_sweep(pending, CPU, (PLUGIN,), SequentialExecutor(), results, suite="demo")
    records = read_records(results)
    assert state["calls"] == 5 + 8  # the interrupted call, then only the 8 trials left
    assert sorted(r["trial_key"] for r in records) == sorted(p.key for p in again)
    assert to_run(plan(items, registry, CPU, records), retry_failed=True) == []


def test_failed_trials_rerun_only_on_request(tmp_path, registry, state):
    items = expand(load_suite(suite_from(BASIC, tmp_path)))[:4]
    results = tmp_path / RECORDS_FILE
    state["fail_seed"] = 1
    run_sweep(plan(items, registry, CPU), CPU, (PLUGIN,), SequentialExecutor(), results, suite=None)
    planned = plan(items, registry, CPU, read_records(results))
    assert [p.state for p in planned] == [DONE, FAILED, DONE, FAILED]
    assert to_run(planned, retry_failed=False) == []
    assert [p.trial.seed for p in to_run(planned, retry_failed=True)] == [1, 1]
    state["fail_seed"] = None
    run_sweep(to_run(planned, retry_failed=True), CPU, (PLUGIN,), SequentialExecutor(), results, suite=None)
    assert {p.state for p in plan(items, registry, CPU, read_records(results))} == {DONE}


def test_trials_are_claimed_as_they_start_so_another_sweep_can_take_the_rest(tmp_path, registry, state):
    items = expand(load_suite(suite_from(BASIC, tmp_path)))[:4]
    results = tmp_path / RECORDS_FILE
    planned = plan(items, registry, CPU)
    keys = [p.key for p in planned]
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE)
    skipped = []

    def another_sweep_moves(record):
        # While this sweep runs its first trial, another one claims the third trial and has
        # already recorded the fourth: neither was claimed here yet, so both are left to it.
        if record["trial_key"] == keys[0]:
            claims = results.with_name(RECORDS_FILE + ".claims")
            other = {"pid": holder.pid, "host": socket.gethostname()}
            with claims.open("a") as handle:
                handle.write(json.dumps({"key": keys[2], **other}) + "\n")
            append_record(results, {**record, "trial_key": keys[3], "status": "failed"})

    try:
        ran = run_sweep(planned, CPU, (PLUGIN,), SequentialExecutor(), results, suite=None,
                        on_record=another_sweep_moves, on_skipped=lambda p: skipped.append(p.key))
    finally:
        holder.communicate(b"\n", timeout=30)
    assert [r["trial_key"] for r in ran] == keys[:2] and state["calls"] == 2
    assert skipped == keys[2:]


def _counts(out: str) -> list[list[str]]:
    """The cells of the dry-run table's rows (dataset ... done failed left)."""
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 7 and cells[-1].isdigit():
            rows.append(cells)
    return rows


def test_sweep_command_dry_run_shows_done_failed_and_left(tmp_path, cli, state):
    suite = suite_from(BASIC, tmp_path)
    code, out, _ = cli("-p", PLUGIN, "sweep", str(suite), "--dry-run")
    assert code == 0 and "12 trials: 0 done, 0 failed, 12 left" in out
    assert _counts(out)[0] == ["synthetic", "none", "0", "full", "0", "0", "2"]
    assert state["calls"] == 0
    state["fail_seed"] = 1
    code, out, _ = cli("-p", PLUGIN, "sweep", str(suite), "-q")
    assert code == 1 and "6 ok, 6 failed" in out and "--retry-failed" in out
    code, out, _ = cli("-p", PLUGIN, "sweep", str(suite), "--dry-run")
    assert "12 trials: 6 done, 6 failed, 0 left; 0 to run" in out
    assert _counts(out)[0][-3:] == ["1", "1", "0"]
    assert len(read_records(tmp_path / "results" / "demo" / RECORDS_FILE)) == 12


def test_dry_run_counts_the_trials_another_process_is_running(tmp_path, cli, registry):
    suite = suite_from(BASIC, tmp_path)
    results = tmp_path / "results" / "demo" / RECORDS_FILE
    code, out, _ = cli("-p", PLUGIN, "sweep", str(suite), "--dry-run")
    assert code == 0 and "running" not in out and not results.parent.exists()  # a dry run writes nothing
    first = plan(expand(load_suite(suite)), registry, CPU)[0].key
    claimed_by_another(results, first)
    code, out, _ = cli("-p", PLUGIN, "sweep", str(suite), "--dry-run")
    assert code == 0 and "1 of the trials to run is running now in another process" in out
    row = next(line for line in out.splitlines() if "full" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][-4:] == ["0", "0", "2", "1"]


def test_adhoc_sweep_resumes_in_the_same_folder(tmp_path, cli, monkeypatch, state):
    monkeypatch.chdir(tmp_path)
    argv = ["-p", PLUGIN, "sweep", "--method", "counted", "--dataset", "synthetic", "--missing", "none,mcar",
            "--rates", "0.1,0.3", "--seeds", "2", "--set", "dataset.samples=30", "--set", "a=2", "-q"]
    code, out, _ = cli(*argv)
    assert code == 0 and "6 trials: 0 done" in out
    folders = list((tmp_path / "mvbench-results").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("sweep-")
    records = read_records(folders[0] / RECORDS_FILE)
    assert [(r["missing"], r["missing_options"].get("rate")) for r in records[::2]] == [
        ("none", None), ("mcar", 0.1), ("mcar", 0.3)]
    assert {r["option_set"] for r in records} == {"counted[a=2]"} and {r["suite"] for r in records} == {None}
    code, out, _ = cli(*argv)
    assert "6 trials: 6 done, 0 failed, 0 left; 0 to run" in out and state["calls"] == 6
    more_seeds = ["3" if a == "2" and argv[i - 1] == "--seeds" else a for i, a in enumerate(argv)]
    code, out, _ = cli(*more_seeds)
    assert "9 trials: 6 done, 0 failed, 3 left" in out and state["calls"] == 9
    assert len(list((tmp_path / "mvbench-results").iterdir())) == 1


def test_sweep_prints_one_line_per_finished_trial_for_logs(tmp_path, cli, state):
    state["fail_seed"] = 1
    code, out, _ = cli("-p", PLUGIN, "sweep", "--method", "counted", "--dataset", "synthetic", "--seeds", "2",
                       "--set", "dataset.samples=30", "--out", str(tmp_path / "r"))
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("[1/2] counted (default) on synthetic, none, seed 0: ACC ")
    assert lines[1] == "[2/2] counted (default) on synthetic, none, seed 1: failed: ValueError: planned failure"


def test_an_interrupted_sweep_says_once_where_its_trials_are(tmp_path, cli, state):
    state["interrupt_at"] = 2
    code, out, err = cli("-p", PLUGIN, "sweep", "--method", "counted", "--dataset", "synthetic", "--seeds", "3",
                         "--set", "dataset.samples=30", "--out", str(tmp_path / "r"), "-q")
    assert code == 130
    assert out.count("stopped:") == 1 and "rerun the same command to resume" in out
    assert "interrupted" not in err
    assert len(read_records(tmp_path / "r" / RECORDS_FILE)) == 1


def test_suite_and_adhoc_arguments_do_not_mix(tmp_path, cli):
    code, _, err = cli("sweep", str(suite_from(BASIC, tmp_path)), "--method", "kmeans")
    assert code == 2 and "--method" in err and "edit the file" in err
    code, _, err = cli("sweep", "--method", "kmeans")
    assert code == 2 and "--dataset" in err
    code, _, err = cli("sweep", str(tmp_path / "absent.toml"))
    assert code == 2 and "not found" in err


def test_only_runs_a_slice_into_the_suites_records(tmp_path, cli, state):
    suite = str(suite_from(BASIC, tmp_path))
    code, out, _ = cli("-p", PLUGIN, "sweep", suite, "--only", "method=ablation", "--only", "rate=0.3,0.1",
                       "--only", "seed=1", "-q")
    assert code == 0 and "2 trials: 0 done" in out and state["calls"] == 2
    records = read_records(tmp_path / "results" / "demo" / RECORDS_FILE)
    assert sorted((r["option_set"], r["missing_options"]["rate"], r["seed"]) for r in records) == [
        ("ablation", 0.1, 1), ("ablation", 0.3, 1)]
    # A method name selects every option set of that method; the slice counts towards the suite.
    code, out, _ = cli("-p", PLUGIN, "sweep", suite, "--only", "method=counted", "--only", "missing=none",
                       "--dry-run")
    assert code == 0 and "4 trials: 0 done, 0 failed, 4 left" in out
    code, out, _ = cli("-p", PLUGIN, "sweep", suite, "--dry-run")
    assert "12 trials: 2 done, 0 failed, 10 left" in out


@pytest.mark.parametrize("only, message", [
    ("rates=0.1", "unknown --only field 'rates' (did you mean 'rate'?)"),
    ("rate", "expected FIELD=VALUE"),
    ("seed=first", "--only seed='first': expected an integer"),
    ("method=ablatoin", "--only method=ablatoin: no trial of this grid has it (did you mean 'ablation'?); "
                        "it has ablation, counted, full"),
    ("rate=0.5", "it has 0, 0.1, 0.3"),
])
def test_only_mistakes_are_one_line_errors(tmp_path, cli, state, only, message):
    code, _, err = cli("-p", PLUGIN, "sweep", str(suite_from(BASIC, tmp_path)), "--only", only, "--dry-run")
    assert code == 2 and message in err and state["calls"] == 0


def test_only_fields_that_match_nothing_together_are_an_error(tmp_path, cli, state):
    code, _, err = cli("-p", PLUGIN, "sweep", str(suite_from(BASIC, tmp_path)), "--only", "missing=none",
                       "--only", "rate=0.3", "--dry-run")
    assert code == 2 and "no trial of this grid matches all of them" in err


def test_a_bumped_method_version_reruns_its_recorded_trials(tmp_path, registry, state, monkeypatch):
    # A changed default with a version bump: the sweep must not serve the old records.
    items = expand(load_suite(suite_from(BASIC, tmp_path)))[:2]
    results = tmp_path / RECORDS_FILE
    run_sweep(plan(items, registry, CPU), CPU, (PLUGIN,), SequentialExecutor(), results, suite="demo")
    recorded = read_records(results)
    assert [r["method_version"] for r in recorded] == [1, 1]
    assert to_run(plan(items, registry, CPU, recorded), retry_failed=False) == []

    spec = registry.methods["counted"]
    changed = replace(spec, version=2,
                      options=(Option("a", "int", 7, "a number"), *spec.options[1:]))
    monkeypatch.setitem(registry.methods, "counted", changed)
    again = plan(items, registry, CPU, recorded)
    assert [p.state for p in again] == ["left", "left"]
    assert {p.key for p in again}.isdisjoint(r["trial_key"] for r in recorded)
    run_sweep(again, CPU, (PLUGIN,), SequentialExecutor(), results, suite="demo")
    assert [r["method_version"] for r in read_records(results)] == [1, 1, 2, 2]


def test_a_variant_is_a_named_option_set_usable_as_a_method(tmp_path, registry, monkeypatch):
    from mvbench.specs import Variant

    spec = registry.methods["counted"]
    monkeypatch.setitem(registry.methods, "counted", replace(
        spec, variants={"counted-b": Variant({"b": "z"}, "b is z")}))
    variant = resolve(Trial(method="counted-b", dataset="synthetic", seed=0, dataset_options=SMALL), registry)
    spelled = resolve(Trial(method="counted", dataset="synthetic", seed=0, method_options={"b": "z"},
                            dataset_options=SMALL), registry)
    cpu = torch.device("cpu")
    assert variant.method.name == "counted" and variant.variant == "counted-b"
    assert variant.method_options["b"] == "z" and variant.trial.option_set == "counted-b"
    assert variant.key(cpu, "fp32") == spelled.key(cpu, "fp32")
    # The user's --set wins over the variant.
    overridden = resolve(Trial(method="counted-b", dataset="synthetic", seed=0, method_options={"b": "w"},
                               dataset_options=SMALL), registry)
    assert overridden.method_options["b"] == "w"
    with pytest.raises(MvbenchError, match="counted-b"):
        resolve(Trial(method="counted-c", dataset="synthetic", seed=0), registry)


def test_a_variant_may_not_hide_a_method(plugin):
    from mvbench.registry import build_registry
    from mvbench.specs import MethodSpec, Variant

    class Clash:
        from mvbench.hookspecs import hookimpl

        @staticmethod
        @hookimpl
        def mvbench_methods():
            return [MethodSpec(name="clash", fit_predict=lambda i: None, description="x",
                               variants={"kmeans": Variant({}, "hides k-means")})]

    with pytest.raises(MvbenchError, match="rename the variant"):
        build_registry(objects=[("clash", Clash)])


REUSED_SUITES = {
    "first": kmeans_suite(),
    "second": kmeans_suite(head='reuse = ["first"]', methods="""
        [[methods]]
        name = "kmeans-raw"
        method = "kmeans"
        options = { n_init = 1, standardize = false }
    """),
}


def test_a_suite_reuses_the_records_of_the_same_trials_from_the_suites_it_names(tmp_path, cli):
    import json

    folder = tmp_path / "leaderboards"
    folder.mkdir()
    for name, text in REUSED_SUITES.items():
        (folder / f"{name}.toml").write_text(text)
    assert cli("sweep", str(folder / "first.toml"), "-q")[0] == 0
    code, out, _ = cli("sweep", str(folder / "second.toml"), "-q")
    assert code == 0 and "ran 2 trials" in out  # kmeans-raw only: the kmeans trials are first's
    own = [json.loads(line) for line in (folder / "results" / "second" / "trials.jsonl").read_text().splitlines()]
    assert {r["option_set"] for r in own} == {"kmeans-raw"}
    assert cli("leaderboard", str(folder / "second.toml"), "--no-plots")[0] == 0
    board = (folder / "second.md").read_text()
    assert "trials recorded by other suites (the same trials): 2 by first" in board
    assert sorted(pd.read_csv(folder / "second.csv")["option_set"]) == ["kmeans", "kmeans-raw"]


@pytest.mark.parametrize("reuse, message", [('"first"', "must be a list of suite names"),
                                            ('["second"]', "names the suite itself")])
def test_a_bad_reuse_list_is_a_one_line_error(tmp_path, cli, reuse, message):
    path = tmp_path / "second.toml"
    path.write_text(REUSED_SUITES["second"].replace('reuse = ["first"]', f"reuse = {reuse}"))
    code, _, err = cli("sweep", str(path), "--dry-run")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
