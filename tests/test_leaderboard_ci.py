"""The committed CI leaderboard must be reproduced exactly by the current code.

After an intended change: ``mvbench leaderboard ci --check --update`` and commit leaderboards/.
"""

from pathlib import Path

import pytest

from mvbench.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_ci_suite_reproduces_the_committed_leaderboard(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("MVBENCH_DATA", str(shared_data))
    monkeypatch.chdir(REPO)
    code = main(["leaderboard", "ci", "--check", "-q"])
    out, err = capsys.readouterr()
    if code != 0:
        pytest.fail(f"leaderboards/ci.csv is not reproduced (run 'mvbench leaderboard ci --check "
                    f"--update' if the change is intended):\n{out}\n{err}")
