"""Read the records of every leaderboard suite (leaderboards/*.toml but ci and smoke-*) and the
published numbers of the dataset registry, and write one row per method, dataset, setting and
metric with a published number: the paper's value, ours (mean +- std, n seeds), the difference,
a verdict and the board.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from mvbench.console import console
from mvbench.commands.common import add_command, registry_from

DEFAULT_FOLDER = "leaderboards"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "report", __doc__,
                         epilog="CI: 'mvbench report --check' fails when the committed report differs from the records.")
    parser.add_argument("--leaderboards", default=DEFAULT_FOLDER, metavar="DIR",
                        help="folder of the suites and their results/ (default: leaderboards)")
    parser.add_argument("--out", metavar="FILE", help="where to write (default: DIR/REPRODUCTION.md)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed report differs from the records")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # Imported here so that the CLI starts without pandas and torch.
    from mvbench.report import REPORT_FILE, collect, markdown
    from mvbench.results import write_atomic

    folder = Path(args.leaderboards)
    report = collect(folder, registry_from(args))
    text = markdown(report)
    out = Path(args.out) if args.out else folder / REPORT_FILE
    if args.check:
        return check(out, text)
    write_atomic(out, text)
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
    console.print(f"wrote {out}: {len(report.rows)} published numbers beside ours"
                  + (f" ({counts})" if counts else ""), highlight=False, soft_wrap=True)
    return 0


def check(path: Path, text: str) -> int:
    """0 when ``path`` holds exactly ``text``; else print the difference and return 1."""
    committed = path.read_text(encoding="utf-8") if path.is_file() else ""
    if committed == text:
        console.print(f"[green]ok:[/] {path} matches the records", highlight=False, soft_wrap=True)
        return 0
    diff = difflib.unified_diff(committed.splitlines(), text.splitlines(), f"{path} (committed)",
                                f"{path} (from the records)", lineterm="", n=0)
    for line in list(diff)[:40]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"[red]mismatch:[/] {path} differs from the records; run 'mvbench report' and commit "
                  f"it with the records", highlight=False, soft_wrap=True)
    return 1
