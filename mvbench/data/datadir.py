"""Where dataset files live: ``--data-dir``, then ``$MVBENCH_DATA``, then the user cache."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "MVBENCH_DATA"


def resolve_data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory in order of precedence (it need not exist yet)."""
    if cli_value:
        return Path(cli_value).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path(platformdirs.user_cache_dir("mvbench")) / "datasets"


def describe_search(cli_value: str | os.PathLike[str] | None = None) -> str:
    """One phrase saying where mvbench looked and how the user can point it elsewhere."""
    where = resolve_data_dir(cli_value)
    return f"looked in {where} (set --data-dir or ${ENV_VAR} to use another folder)"
