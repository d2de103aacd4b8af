"""Run a method, variant, missingness mechanism or dataset, or every contribution of a plugin (its
registered name, or a module given with -p), through the contract on tiny synthetic data: option
declarations, labels, determinism for a seed, no use of the ground truth, missing rows never
read, mask invariants. Methods run with their smoke_options (tiny epochs); --set overrides them.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from mvbench.commands.common import add_command, add_set_argument, parse_settings, registry_from
from mvbench.conformance import check_plugin
from mvbench.console import console
from mvbench.data.datadir import resolve_data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "check", __doc__,
                         epilog="examples: mvbench check rav | mvbench -p my_plugin check my_plugin")
    parser.add_argument("name", help="method, variant, mechanism, dataset or plugin name")
    add_set_argument(parser, "NAME=VALUE", "an option for the checked method or mechanism (repeatable)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    options = parse_settings(args.settings)["method"]
    results = check_plugin(registry, args.name, options=options,
                           data_dir=str(resolve_data_dir(args.data_dir)),
                           plugin_names={args.name, *args.plugin})
    table = Table(title=f"mvbench check {args.name}")
    for column in ("plugin", "check", "result", "what to fix"):
        table.add_column(column, overflow="fold")
    for r in results:
        verdict = "skipped" if r.skipped else "ok" if r.ok else "FAILED"
        table.add_row(r.plugin, r.check, verdict, r.message)
    console.print(table)
    failed = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(failed)} of {len(results)} checks passed", highlight=False)
    return 1 if failed else 0
