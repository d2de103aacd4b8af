"""Argument parsing shared by the commands: every command's parser, and the trial arguments of
the commands that run trials (run, sweep)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mvbench.checkpoint import DEFAULT_EVERY
from mvbench.commands import SUBCOMMANDS
from mvbench.errors import MvbenchError
from mvbench.missing import FILL_STRATEGIES
from mvbench.options import split_assignment
from mvbench.registry import Registry, get_registry

TARGETS = ("method", "dataset", "missing")


def add_command(subparsers: argparse._SubParsersAction, name: str, description: str,
                epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of command ``name``: its one-line help from the SUBCOMMANDS table, and
    ``description`` (a command module passes its docstring) for ``mvbench NAME --help``."""
    return subparsers.add_parser(name, help=SUBCOMMANDS[name][1], description=" ".join(description.split()),
                                 epilog=epilog)


def add_set_argument(parser: argparse.ArgumentParser, metavar: str, help_text: str) -> None:
    """``--set`` (repeatable) into ``args.settings``, read by :func:`parse_settings`."""
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar=metavar, help=help_text)


def add_trial_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default="3", metavar="N|LIST",
                        help="N seeds 0..N-1, or a comma-separated list such as 0,3,7 "
                             "(a single seed: '7,'); default 3")
    add_set_argument(parser, "NAME=VALUE", "set an option (repeatable): NAME=VALUE for the method, "
                                           "dataset.NAME=VALUE or missing.NAME=VALUE for the others; "
                                           "see 'mvbench show NAME' for the options")
    parser.add_argument("--fill", default="mean", choices=sorted(FILL_STRATEGIES),
                        help="how the runner fills missing views for methods that do not handle "
                             "them (default: mean = per-view mean of the observed rows)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, "
                                                         "cuda:N or mps (default auto)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                        help="fp32, or bf16 through autocast (default fp32)")
    parser.add_argument("--save-labels", action="store_true",
                        help="store each trial's predicted labels (and the final features of a method "
                             "that returns them) as .npy files in labels/ beside the records; the "
                             "record names them (see mvbench plot)")
    parser.add_argument("--checkpoint-every", type=float, default=DEFAULT_EVERY / 60, metavar="MINUTES",
                        help="snapshot a long trial of a method that takes snapshots every MINUTES of "
                             "training (0: every epoch), in checkpoints/ beside the records; run again "
                             "to resume an interrupted trial from it (default 10)")


def checkpoint_seconds(minutes: float) -> float:
    """``--checkpoint-every`` in seconds."""
    if not minutes >= 0:
        raise MvbenchError(f"--checkpoint-every {minutes:g} must be a number of minutes >= 0 (0: every epoch)")
    return minutes * 60


def parse_seeds(text: str) -> list[int]:
    """``5`` means seeds 0..4; ``0,3,7`` (or ``7,``) lists them."""
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise MvbenchError(f"--seeds {text!r} is not a count or a comma-separated list of "
                           f"integers; e.g. --seeds 5 or --seeds 0,3,7") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise MvbenchError(f"--seeds {text!r} must name at least one seed, none negative or repeated")
    return seeds


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """Split ``--set`` values by target: plain names go to the method."""
    out: dict[str, dict[str, Any]] = {target: {} for target in TARGETS}
    for item in items:
        name, value = split_assignment(item)
        target, dot, rest = name.partition(".")
        if dot and target in ("dataset", "missing"):
            out[target][rest] = value
        elif dot and target == "method":
            out["method"][rest] = value
        else:
            out["method"][name] = value
    return out


def registry_from(args: argparse.Namespace) -> Registry:
    return get_registry(tuple(args.plugin))


def first_line(text: Any) -> str:
    """The first line of an error message (the cause; the record keeps the rest)."""
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def traceback_hint(failed: Sequence[Mapping[str, Any]], results_file: Path) -> str | None:
    """Where the full tracebacks of failed trials are kept, or None when none has one."""
    keys = [r["trial_key"] for r in failed if r.get("traceback") and r.get("trial_key")]
    if not keys:
        return None
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    return (f"full traceback{'s' if len(keys) > 1 else ''}: field 'traceback' of the failed record"
            f"{'s' if len(keys) > 1 else ''} (trial_key {shown}) in {results_file}")


def default_out_dir(prefix: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("mvbench-results") / f"{prefix}-{stamp}"
