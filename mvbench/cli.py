"""The ``mvbench`` command line. Subcommands live in :mod:`mvbench.commands`; every user
error is printed as one line (``error: ...``) with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from rich.markup import escape

import mvbench
from mvbench.console import err_console
from mvbench.errors import MvbenchError

COMMANDS = ("run", "listing", "datasets", "sweep", "leaderboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mvbench",
        description="Benchmark deep multi-view clustering methods: seeded trials, shared "
                    "missing-view masks, mean +- std over seeds.",
        epilog="Run 'mvbench COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"mvbench {mvbench.__version__}")
    parser.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                        help="import and register a plugin module (repeatable); "
                             "$MVBENCH_PLUGINS takes a comma-separated list too")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with dataset files (default: $MVBENCH_DATA, then the user "
                             "cache folder)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mvbench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mvbench.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    previous = _stop_like_ctrl_c_on_sigterm()
    try:
        return int(args.handler(args) or 0)
    except MvbenchError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] finished trials are kept in the results file",
                          highlight=False)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_like_ctrl_c_on_sigterm() -> Any:
    """Make ``kill PID`` stop a run as Ctrl-C does: the default action would end the driver
    at once and leave its busy workers training for nobody. Returns the handler to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


if __name__ == "__main__":
    sys.exit(main())
