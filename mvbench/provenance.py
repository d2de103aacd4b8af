"""What produced a result: versions, git commit, host. Copied into every trial record."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mvbench


def checkout_commit(root: Path) -> str | None:
    """The commit of the git checkout at ``root`` (with ``+dirty`` when modified), if it is one.

    ``leaderboards/`` does not count: a sweep appends its records there while it runs, and those
    outputs do not change what a trial computes."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)leaderboards"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the mvbench source tree, as :func:`checkout_commit` states it."""
    return checkout_commit(Path(mvbench.__file__).resolve().parent.parent)


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    return {
        "mvbench": mvbench.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "host": platform.node(),
    }
