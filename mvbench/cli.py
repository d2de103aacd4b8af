"""The ``mvbench`` command line. Subcommands live in :mod:`mvbench.commands`; every user
error is printed as one line (``error: ...``) with exit status 2, never a traceback. Only the
module of the command that runs is imported, so ``mvbench --help`` and ``--version`` answer
without importing torch."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from rich.markup import escape

import mvbench
from mvbench.commands import SUBCOMMANDS
from mvbench.console import err_console
from mvbench.errors import MvbenchError
from mvbench.determinism import configure_cublas

configure_cublas()  # before any command can start CUDA, in this process or the workers it spawns

_GLOBAL_WITH_VALUE = ("-p", "--plugin", "--data-dir")


def command_in(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: the first word that is neither a global option nor its value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _GLOBAL_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for ``argv``: the module of the command it names registers that command in
    full; every other command is listed by name and help only."""
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
    parser.add_argument("--offline", action="store_true",
                        help="never download a dataset file on first use: an absent one stops the "
                             "command before any trial (also $MVBENCH_OFFLINE=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = SUBCOMMANDS.get(command_in(argv) or "", (None, ""))[0]
    for name, (module, help_text) in SUBCOMMANDS.items():
        if module != wanted:
            subparsers.add_parser(name, help=help_text, add_help=False)
    if wanted:
        importlib.import_module(f"mvbench.commands.{wanted}").register(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    if getattr(args, "offline", False):
        from mvbench.data.fetch import OFFLINE_ENV  # imported here: pooch is not needed for --help

        os.environ[OFFLINE_ENV] = "1"  # also read by the worker processes, which inherit it
    previous = _stop_like_ctrl_c_on_sigterm()
    try:
        return int(args.handler(args) or 0)
    except MvbenchError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] finished trials are kept in the results file; a long "
                          "trial that took snapshots resumes from them when the same command runs again",
                          highlight=False, soft_wrap=True)
        return 130
    except OSError as exc:
        if exc.filename is None:
            raise
        # A path the user gave that cannot be used (a file where a folder is needed, no
        # permission, ...): one line naming it, not a traceback.
        err_console.print(f"[red]error:[/] cannot use {escape(str(exc.filename))}: {escape(exc.strerror or str(exc))}; "
                          f"choose another path", highlight=False, soft_wrap=True)
        return 2
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
