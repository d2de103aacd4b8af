"""Write index.html, reproduction.html and a page per board (every suite but ci with a NAME.csv;
smoke suites labelled as such) into DIR: sortable tables, the best cells highlighted, plots and
the provenance on each page. Self-contained: open index.html in a browser, no server or network
needed.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from mvbench.console import console
from mvbench.commands.common import add_command, registry_from
from mvbench.commands.report import DEFAULT_FOLDER


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "site", __doc__,
                         epilog="CI: 'mvbench site --check' fails when the committed site differs from a fresh one.")
    parser.add_argument("dir", nargs="?", metavar="DIR", help="output folder (default: LEADERBOARDS/site)")
    parser.add_argument("--leaderboards", default=DEFAULT_FOLDER, metavar="DIR",
                        help="folder of the suites, their boards and results/ (default: leaderboards)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if DIR differs from what the command generates")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # Imported here so that the CLI starts without pandas and torch.
    from mvbench.results import write_atomic
    from mvbench.site import SITE_DIR, build_site, differences

    folder = Path(args.leaderboards)
    out_dir = Path(args.dir) if args.dir else folder / SITE_DIR
    pages = build_site(folder, registry_from(args))
    found = differences(pages, out_dir)
    if args.check:
        if not found:
            console.print(f"[green]ok:[/] {out_dir} matches the boards and records", highlight=False,
                          soft_wrap=True)
            return 0
        for line in found:
            console.print(f"  {out_dir / line}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"[red]mismatch:[/] {out_dir} is not what 'mvbench site' generates; run it and "
                      f"commit the result", highlight=False, soft_wrap=True)
        return 1
    for name, text in pages.items():
        write_atomic(out_dir / name, text)
    for line in found:
        if line.endswith("(delete it)"):
            warnings.warn(f"{out_dir / line}")
    console.print(f"wrote {len(pages)} pages into {out_dir}; open {out_dir / 'index.html'}", highlight=False,
                  soft_wrap=True)
    return 0
