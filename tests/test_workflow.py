"""A researcher's workflow: nothing that silently misleads (default missingness of datasets that
ship a pattern, resuming runs, one meaning per flag, suites found from anywhere, loud plugin and
method failures, logs without a terminal, a fast --help), method selectors, saved labels and
trial plots (time estimates: test_estimate.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from mvbench import api
from mvbench.adhoc import option_set_name, parse_selectors
from mvbench.cli import build_parser
from mvbench.commands import SUBCOMMANDS
from mvbench.commands.listing import options_table
from mvbench.errors import MvbenchError
from mvbench.leaderboard_render import _series, plot_dataset
from mvbench.registry import get_registry
from mvbench.results import RECORDS_FILE, read_records
from mvbench.suite import suite_path
from mvbench_datasets.manifest import spec_for

TINY = ["--set", "dataset.samples=60", "--set", "dataset.dims=5"]
PLUGIN = "mvbench_workflow_testplugin"
PLUGIN_SOURCE = '''
import numpy as np
from mvbench.hookspecs import hookimpl
from mvbench.specs import FEATURES_EXTRA, MethodOutput, MethodSpec


def _deep(depth):
    if depth == 0:
        raise ValueError("the innermost cause\\nand a second line")
    return _deep(depth - 1)


def _fail(inputs):
    return _deep(12)


def _draw(inputs):
    n = inputs.mask.shape[0]
    labels = np.arange(n) % inputs.n_clusters
    features = np.stack([labels, np.arange(n) / n, np.zeros(n)], axis=1)
    return MethodOutput(labels=labels, extras={
        "loss_history": {"pretrain": [3.0, 2.0, 1.5], "train": {"total": [1.2, 1.0], "rec": [0.5, 0.4]}},
        "view_weights": [[0.6, 0.4], [0.3, 0.7]], FEATURES_EXTRA: features})


@hookimpl
def mvbench_methods():
    return [MethodSpec(name="deep-fail", fit_predict=_fail, description="test: fails 12 calls deep"),
            MethodSpec(name="drawn", fit_predict=_draw, description="test: extras to draw")]
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    (folder / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    sys.path.insert(0, str(folder))
    yield PLUGIN
    sys.path.remove(str(folder))


# --- a dataset that ships its missing-view pattern ------------------------------------------

def test_a_manifest_entry_with_a_mask_defaults_to_its_file_mask():
    base = {"name": "x", "description": "d", "citation": "c", "file": "x.mat"}
    assert spec_for({**base, "mask": "missing_matrix (1 = missing)"}).default_missing == "file"
    assert spec_for(base).default_missing == "none"
    assert get_registry().dataset("msrcv1-missing-0.5").default_missing == "file"
    assert get_registry().dataset("msrcv1").default_missing == "none"


def test_a_dataset_with_a_mask_runs_with_it_unless_told_none(cli, tmp_path, shared_data):
    code, out, err = cli("--data-dir", str(shared_data), "run", "-m", "kmeans", "-d", "msrcv1-missing-0.5",
                         "--seeds", "0,", "--set", "n_init=1", "--out", str(tmp_path / "a"), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / "a" / RECORDS_FILE)
    assert record["missing"] == "file" and record["incomplete_fraction"] > 0.3  # the file's own pattern
    assert "ships its missing-view pattern, so it runs with --missing file" in out
    code, out, err = cli("--data-dir", str(shared_data), "run", "-m", "kmeans", "-d", "msrcv1-missing-0.5",
                         "--missing", "none", "--seeds", "0,", "--set", "n_init=1", "--out", str(tmp_path / "b"), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / "b" / RECORDS_FILE)
    assert record["missing"] == "none" and record["dataset_default_missing"] == "file"
    assert "this run uses --missing none instead" in out
    # An ad-hoc sweep takes each dataset's own default too.
    registry = get_registry()
    prepared = api.prepare_sweep(registry, methods="kmeans", datasets=["msrcv1-missing-0.5", "synthetic"],
                                 seeds=[0], out=tmp_path / "c")
    assert [p.trial.missing for p in prepared.planned] == ["file", "none"]


# --- run resumes like sweep ---------------------------------------------------------------

def test_run_twice_into_one_folder_resumes_and_counts_each_seed_once(cli, tmp_path):
    argv = ["run", "-m", "kmeans", "-d", "synthetic", "--seeds", "2", *TINY, "--out", str(tmp_path), "-q"]
    assert cli(*argv)[0] == 0
    code, out, _ = cli(*argv)
    assert code == 0 and "resuming" in out and "2 of 2 trials are already recorded ok there and are not rerun" in out
    assert len(read_records(tmp_path / RECORDS_FILE)) == 2
    code, out, _ = cli(*[a if a != "2" else "3" for a in argv])
    assert code == 0 and "2 of 3 trials" in out
    assert [r["seed"] for r in read_records(tmp_path / RECORDS_FILE)] == [0, 1, 2]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["n_seeds"].tolist() == [3]


def test_a_summary_counts_a_trial_recorded_twice_once(tmp_path):
    from mvbench.results import aggregate

    record = {"trial_key": "k0", "dataset": "d", "missing": "none", "method": "m", "seed": 0, "status": "ok",
              "metrics": {"acc": 0.5}}
    twice = [record, {**record, "metrics": {"acc": 0.7}}, {**record, "trial_key": "k1", "seed": 1}]
    row = aggregate(twice).iloc[0]
    assert row["n_seeds"] == 2 and row["acc_mean"] == pytest.approx(0.6)


# --- one name, one meaning; suites from anywhere ------------------------------------------

def test_runs_per_view_rates_are_view_rates(cli, tmp_path):
    code, _, err = cli("run", "-m", "kmeans", "-d", "synthetic", "--view-rates", "0.2", "--seeds", "1,", *TINY,
                       "--out", str(tmp_path), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / RECORDS_FILE)
    assert record["missing"] == "per-view" and record["missing_per_view"] == pytest.approx([0.2, 0.2, 0.2])


def test_suite_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = Path(__file__).resolve().parent.parent / "leaderboards"
    assert suite_path("ci").resolve() == project / "ci.toml"
    with pytest.raises(MvbenchError, match=rf"looked for nope.toml in {tmp_path / 'leaderboards'} and {project}"):
        suite_path("nope")
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "ci.toml").write_text("")
    assert suite_path("ci") == Path("leaderboards/ci.toml")  # the working directory's own suite first


# --- loud failures ------------------------------------------------------------------------

def test_a_plugin_asked_for_by_name_that_fails_to_import_is_a_one_line_error(cli):
    code, _, err = cli("-p", "no_such_plugin_xyz", "list")
    assert code == 2 and err.startswith("error: plugin module 'no_such_plugin_xyz' (from -p) failed to import")
    assert err.strip().count("\n") == 0


def test_a_method_exception_prints_its_cause_and_where_the_full_traceback_is(cli, tmp_path, plugin):
    code, out, _ = cli("-p", plugin, "run", "-m", "deep-fail", "-d", "synthetic", "--seeds", "1,", *TINY,
                       "--out", str(tmp_path), "-q")
    assert code == 1
    assert "seed 1 failed: ValueError: the innermost cause" in out and "a second line" not in out
    (record,) = read_records(tmp_path / RECORDS_FILE)
    assert (f"full traceback: field 'traceback' of the failed record (trial_key {record['trial_key']}) in "
            f"{tmp_path / RECORDS_FILE}") in out
    # The whole traceback is kept, down to the frame that raised (13 calls below the method).
    assert 'raise ValueError("the innermost cause' in record["traceback"]


# --- output without a terminal ------------------------------------------------------------

def test_run_prints_a_row_per_seed_and_never_splits_a_long_path(cli, tmp_path):
    out_dir = tmp_path / ("a-long-folder-name-" * 8) / "results"
    code, out, _ = cli("run", "-m", "kmeans", "-d", "synthetic", "--seeds", "2", *TINY, "--out", str(out_dir))
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("[")]
    assert rows[0].startswith("[1/2] kmeans (default) on synthetic, none, seed 0: ACC ")
    assert rows[1].startswith("[2/2] kmeans (default) on synthetic, none, seed 1: ACC ")
    assert f"records: {out_dir / RECORDS_FILE}" in out.replace("\n", " ") and str(out_dir / RECORDS_FILE) in out


def test_show_never_cuts_an_option_name_however_narrow():
    spec = get_registry().method("dimvc-hia")
    console = Console(width=40, record=True, file=open("/dev/null", "w"))
    console.print(options_table(spec.options))
    text = console.export_text()
    assert all(option.name in text for option in spec.options)


# --- a fast --help ------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "import mvbench.cli",
    "import mvbench.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass",
    "import mvbench.cli as c\ntry:\n    c.main(['--version'])\nexcept SystemExit:\n    pass",
])
def test_help_and_version_do_not_import_torch(code):
    probe = code + "\nimport sys\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("NO-TORCH")
    if "--help" in code:
        assert "stats" in done.stdout and "plot" in done.stdout and "sweep" in done.stdout


def test_the_help_table_matches_what_the_command_modules_register():
    for name, (_, help_text) in SUBCOMMANDS.items():
        parser = build_parser([name])
        action = next(a for a in parser._subparsers._group_actions)  # the COMMAND subparsers
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        assert helps[name] == help_text, f"SUBCOMMANDS[{name!r}] differs from its module's help"


# --- method selectors ---------------------------------------------------------------------

def test_selectors_give_per_method_options_and_grids():
    assert parse_selectors("rav[z_normalize=true,w_normalize=energy],kmeans") == [
        ("rav", {"z_normalize": "true", "w_normalize": "energy"}), ("kmeans", {})]
    assert parse_selectors("probe[mode=[a,b],widths=[[4,8]]]") == [
        ("probe", {"mode": "a", "widths": "[4,8]"}), ("probe", {"mode": "b", "widths": "[4,8]"})]
    assert option_set_name("rav", {"z_normalize": "true", "a": 1}) == "rav[a=1,z_normalize=true]"
    assert option_set_name("kmeans", {}) is None


@pytest.mark.parametrize("text, message", [
    ("rav[z_normalize=true", "unbalanced brackets"),
    ("rav[z_normalize]", "expected NAME=VALUE inside the brackets"),
    ("rav[a=1,a=2]", "option 'a' is given twice"),
    ("[a=1]", "lacks its method name"),
    ("rav[a=1]x", "text after ']'"),
])
def test_selector_mistakes_are_one_line_errors(text, message):
    with pytest.raises(MvbenchError, match=message.replace("[", r"\[")):
        parse_selectors(text)


def test_an_adhoc_sweep_compares_a_variant_with_a_baseline(cli, tmp_path):
    code, out, err = cli("sweep", "-m", "kmeans[n_init=1],kmeans", "-d", "synthetic", "--seeds", "2", *TINY,
                         "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / RECORDS_FILE)
    assert [(r["option_set"], r["method_options"]["n_init"]) for r in records] == [
        ("kmeans[n_init=1]", 1), ("kmeans[n_init=1]", 1), (None, 10), (None, 10)]
    code, out, err = cli("sweep", "-m", "kmeans[n_init=1],kmeans", "-d", "synthetic", "--seeds", "2", *TINY,
                         "--out", str(tmp_path), "--dry-run")
    assert "kmeans[n_init=1]" in out  # not eaten as rich markup
    assert "bad" not in err


# --- saved labels and trial plots ---------------------------------------------------------

def test_save_labels_keeps_the_labels_and_features_beside_the_record(cli, tmp_path, plugin):
    code, _, err = cli("-p", plugin, "run", "-m", "drawn", "-d", "synthetic", "--seeds", "1,", *TINY,
                       "--out", str(tmp_path), "-q", "--save-labels")
    assert code == 0, err
    (record,) = read_records(tmp_path / RECORDS_FILE)
    labels = np.load(tmp_path / record["labels_file"])
    assert record["labels_file"] == f"labels/{record['trial_key']}-seed1.npy"
    assert hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest() == record["labels_sha256"]
    features = np.load(tmp_path / record["features_file"])
    assert features.shape == (60, 3) and features.dtype == np.float32
    assert "features" not in record["extras"]  # arrays never go into the JSON line
    code, out, err = cli("plot", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "plots" / f"{record['trial_key']}-seed1.png").stat().st_size > 10_000
    assert "wrote" in out


def test_without_save_labels_nothing_is_saved_and_features_stay_out_of_the_record(cli, tmp_path, plugin):
    code, _, err = cli("-p", plugin, "run", "-m", "drawn", "-d", "synthetic", "--seeds", "1,", *TINY,
                       "--out", str(tmp_path), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / RECORDS_FILE)
    assert "labels_file" not in record and "features" not in record["extras"]
    assert not (tmp_path / "labels").exists()
    assert json.loads((tmp_path / RECORDS_FILE).read_text())["extras"]["view_weights"] == [[0.6, 0.4], [0.3, 0.7]]


def test_plot_mistakes_are_one_line_errors(cli, tmp_path):
    code, _, err = cli("plot", str(tmp_path))
    assert code == 2 and "no records file" in err


# --- ad-hoc leaderboard plots: a line per method and option set ---------------------------

def _board_rows(method: str, acc: list[float]) -> list[dict]:
    return [{"dataset": "d", "missing": "mcar" if rate else "none", "missing_params": "", "rate": rate,
             "method": method, "option_set": "default", "acc_mean": a, "acc_std": 0.01, "nmi_mean": a,
             "nmi_std": 0.01} for rate, a in zip((0.0, 0.3, 0.5), acc)]


def test_plot_lines_are_per_method_and_option_set(tmp_path):
    rows = pd.DataFrame(_board_rows("kmeans", [0.9, 0.8, 0.7]) + _board_rows("mflvc", [0.6, 0.5, 0.4]))
    series = _series(rows)
    assert [(label, entry) for label, entry, _, _ in series] == [
        ("kmeans", ("kmeans", "default")), ("mflvc", ("mflvc", "default"))]
    assert [group["acc_mean"].tolist() for *_, group in series] == [[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]]
    plot_dataset(rows, "d", tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 10_000


def test_the_readme_architecture_table_names_every_core_module():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)/?`", section))
    package = Path(__file__).resolve().parent.parent / "mvbench"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules - named == set(), f"README's architecture table does not name {sorted(modules - named)}"


def test_built_in_methods_take_every_random_stream_from_seed_for():
    import re

    methods = Path(__file__).resolve().parent.parent / "plugins" / "methods"
    for path in methods.glob("*.py"):
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        # The trial seed itself (``inp.seed``) or arithmetic on a seed would be a stream of its own.
        assert not re.search(r"\.seed\b(?!_for)|seed\s*[+*]", code), f"{path.name} derives a seed itself"
