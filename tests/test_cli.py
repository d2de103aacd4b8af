import argparse
import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from mvbench import cli as cli_module
from mvbench.results import read_records

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mvbench-example-plugin"
TINY = ["--set", "dataset.samples=60", "--set", "dataset.dims=5"]


def test_no_arguments_shows_help(cli):
    code, out, _ = cli()
    assert code == 0 and "usage: mvbench" in out and "run" in out


def test_version_from_the_console_script():
    done = subprocess.run([sys.executable, "-m", "mvbench.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("mvbench ")


def test_run_synthetic_end_to_end(cli, tmp_path):
    code, out, err = cli("run", "--method", "kmeans", "--dataset", "synthetic", "--seeds", "0,2",
                         *TINY, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["seed"] for r in records] == [0, 2] and all(r["status"] == "ok" for r in records)
    assert "mean" in out and "std" in out and "ACC" in out
    summary = pd.read_csv(tmp_path / "summary.csv")  # a plain CSV; what it means is in the sidecar
    assert summary["n_seeds"].tolist() == [2] and "acc_mean" in summary.columns
    meta = json.loads((tmp_path / "summary.meta.json").read_text())
    assert meta["std"].startswith("std = sample standard deviation")


def test_run_handwritten_with_missing_views(cli, tmp_path):
    code, out, err = cli("run", "--method", "kmeans", "--dataset", "handwritten", "--seeds", "1",
                         "--rate", "0.3", "--set", "n_init=1", "--out", str(tmp_path), "-q")
    assert code == 0, err
    (record,) = read_records(tmp_path / "trials.jsonl")
    assert record["n_samples"] == 2000 and record["n_views"] == 6 and record["n_clusters"] == 10
    assert record["missing"] == "mcar" and record["missing_options"] == {"rate": 0.3}
    assert record["incomplete_fraction"] == pytest.approx(0.3)
    assert record["metrics"]["acc"] > 0.5
    assert record["preprocessing"]


def test_default_run_uses_handwritten(cli, tmp_path, monkeypatch):
    code, out, err = cli("run", "--seeds", "1,", "--method", "kmeans", "--set", "n_init=1",
                         "--out", str(tmp_path), "-q")
    assert code == 0, err
    assert read_records(tmp_path / "trials.jsonl")[0]["dataset"] == "handwritten"


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--method", "kmean"], "unknown method 'kmean' (did you mean 'kmeans'?)"),
    (["run", "--method", "kmeans", "--dataset", "synthetc"], "did you mean 'synthetic'?"),
    (["run", "--method", "kmeans", "--set", "n_inits=3"], "did you mean 'n_init'?"),
    (["run", "--method", "kmeans", "--set", "n_init=many"], "'n_init': 'many' is not a valid int"),
    (["run", "--method", "kmeans", "--set", "n_init"], "expected name=value"),
    (["run", "--method", "kmeans", "--seeds", "x"], "--seeds 'x' is not a count"),
    (["run", "--method", "kmeans", "--missing", "mcra"], "did you mean 'mcar'?"),
    (["run", "--method", "kmeans", "--missing", "mcar", "--view-rates", "0.1"], "--view-rates is for --missing per-view"),
    (["run", "--method", "kmeans", "--rates", "0.1"], "run's --rates is now --view-rates"),
    (["run", "--method", "kmeans", "--device", "cuda:3"], "use --device cpu"),
    (["show", "rva"], "unknown plugin name 'rva'"),
])
def test_bad_input_is_one_line_error(cli, argv, fragment, tmp_path):
    code, out, err = cli(*argv, "--out", str(tmp_path)) if argv[0] == "run" else cli(*argv)
    assert code == 2
    assert fragment in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "trials.jsonl").exists()


def test_list_and_show(cli):
    code, out, _ = cli("list", "methods")
    assert code == 0 and "kmeans" in out
    code, out, _ = cli("list")
    assert code == 0 and "handwritten" in out and "mcar" in out
    code, out, _ = cli("show", "kmeans")
    assert code == 0 and "n_init" in out and "citation" in out
    code, out, _ = cli("show", "mcar")
    assert code == 0 and "sample-level" in out
    code, out, _ = cli("show", "mflvc")
    assert code == 0 and "ablation" in out and "yes" in out
    code, out, _ = cli("show", "handwritten")
    assert code == 0 and "2000" in out and "preprocess" in out


def test_example_third_party_plugin_through_the_cli(cli, tmp_path, monkeypatch):
    entry_points = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry_points["mvbench"] == {"example": "mvbench_example_plugin"}
    monkeypatch.syspath_prepend(str(EXAMPLE))
    code, out, err = cli("-p", "mvbench_example_plugin", "run", "--method", "best-view-kmeans",
                         "--dataset", "synthetic", "--missing", "drop-last-view", "--set", "missing.rate=0.5",
                         "--seeds", "2", *TINY, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    assert records[0]["missing_definition"].startswith("round(rate*N) samples")
    assert len(records[0]["extras"]["view_scores"]) == 3
    code, out, _ = cli("-p", "mvbench_example_plugin", "show", "best-view-kmeans")
    assert code == 0 and "from plugin 'mvbench_example_plugin'" in out


def test_sigterm_stops_a_command_like_ctrl_c(monkeypatch, capsys):
    def parser_whose_command_gets_killed(argv):
        parser = argparse.ArgumentParser()
        parser.set_defaults(handler=lambda args: os.kill(os.getpid(), signal.SIGTERM))
        return parser

    monkeypatch.setattr(cli_module, "build_parser", parser_whose_command_gets_killed)
    before = signal.getsignal(signal.SIGTERM)
    assert cli_module.main([]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_show_lists_a_methods_variants_and_run_accepts_a_variant_name(tmp_path, capsys):
    from mvbench.registry import get_registry

    version = get_registry().methods["rav"].version
    assert cli_module.main(["show", "rav"]) == 0
    shown = capsys.readouterr().out
    assert "rav-literal" in shown and "rav-noLS" in shown and f"version: {version}" in shown
    out = tmp_path / "out"
    code = cli_module.main(["run", "-m", "rav-literal", "-d", "synthetic", "--seeds", "0,", "--set", "pre_epochs=1",
                 "--set", "epochs=1", "--set", "hidden=8", "--set", "feature_dim=4",
                 "--set", "dataset.samples=40", "--out", str(out), "--device", "cpu", "-q"])
    assert code == 0
    (record,) = read_records(out / "trials.jsonl")
    assert record["method"] == "rav" and record["variant"] == "rav-literal" and record["method_version"] == version
    assert record["option_set"] == "rav-literal"
    assert record["method_options"]["z_normalize"] is False and record["method_options"]["wd_norm"] == "l1"
