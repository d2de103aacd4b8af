"""The generated files committed under leaderboards/ must be what their commands make from the
committed records (CI runs these on a clean clone)."""

from pathlib import Path

import pytest

from mvbench.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command, output", [("report", "leaderboards/REPRODUCTION.md"), ("site", "leaderboards/site/")])
def test_committed_output_matches_its_command(command, output, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code = main([command, "--check"])
    out, err = capsys.readouterr()
    if code != 0:
        pytest.fail(f"{output} is not what 'mvbench {command}' makes from the records (run it and commit the "
                    f"result):\n{out}\n{err}")
