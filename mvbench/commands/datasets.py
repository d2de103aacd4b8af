"""Dataset files in the data directory (--data-dir, $MVBENCH_DATA, or the user cache folder).
Without a subcommand: list.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from mvbench.commands.common import add_command, registry_from
from mvbench.console import console
from mvbench.data.datadir import resolve_data_dir
from mvbench.errors import MvbenchError
from mvbench.data.fetch import fetch_file, locate, sha256_file
from mvbench.specs import DatasetSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "datasets", __doc__)
    parser.set_defaults(handler=handle_list)
    sub = parser.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND")
    sub.add_parser("list", help="every dataset with N/V/K and whether its file is present",
                   ).set_defaults(handler=handle_list)
    info = sub.add_parser("info", help="all known facts of a dataset, with published results")
    info.add_argument("name", help="dataset name or alias")
    info.set_defaults(handler=handle_info)
    fetch = sub.add_parser("fetch", help="download a dataset file and check its sha256")
    fetch.add_argument("name", help="dataset name or alias")
    fetch.set_defaults(handler=handle_fetch)
    verify = sub.add_parser("verify", help="check the sha256 of present dataset files")
    verify.add_argument("names", nargs="*", metavar="NAME", help="datasets to check (default: all present)")
    verify.set_defaults(handler=handle_verify)


def _nvk(summary: Any) -> str:
    return "/".join(str(summary.get(key, "?")) for key in ("n", "v", "k"))


def _status(spec: DatasetSpec, data_dir: str | None) -> tuple[str, str]:
    """(status, where) of a dataset's file."""
    files = spec.summary.get("files")
    if files is None:
        return ("embedded" if spec.summary.get("embedded") else "built-in"), "-"
    if not files:
        return "no file known", "-"
    path = locate(files[0], data_dir)
    # relative to the data directory, which the listing's title names
    return ("present", str(path.relative_to(resolve_data_dir(data_dir)))) if path else ("absent", files[0])


def handle_list(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    table = Table(title=f"datasets (data directory: {resolve_data_dir(args.data_dir)})")
    table.add_column("name", no_wrap=True)
    table.add_column("N/V/K", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("mask", no_wrap=True)
    table.add_column("where", overflow="fold")
    for spec in sorted(registry.datasets.values(), key=lambda s: s.name):
        status, where = _status(spec, args.data_dir)
        style = {"present": "green", "embedded": "green", "absent": "yellow"}.get(status, "dim")
        table.add_row(spec.name, _nvk(spec.summary), f"[{style}]{status}[/]",
                      "file" if spec.summary.get("missing_definition") else "", where)
    console.print(table)
    return 0


def handle_info(args: argparse.Namespace) -> int:
    spec = registry_from(args).dataset(args.name)
    s = spec.summary
    status, where = _status(spec, args.data_dir)
    facts = Table(show_header=False, title=spec.name, title_justify="left")
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    rows = [
        ("description", spec.description),
        ("aliases", ", ".join(spec.aliases) or "-"),
        ("N/V/K", _nvk(s)),
        ("dims", ", ".join(map(str, s.get("dims", []))) or "?"),
        ("file", ", ".join(s.get("files", [])) or "-"),
        ("status", f"{status}: {resolve_data_dir(args.data_dir) / where}" if status == "present"
         else status),
        ("sha256", s.get("sha256", "unknown")),
        ("size", f"{s['size']:,} bytes" if "size" in s else "unknown"),
        ("layout", ", ".join(f"{key}={s[key]}" for key in ("views", "labels", "orientation")
                             if key in s) or "-"),
        ("preprocess", s.get("preprocess", "-")),
        ("fixed mask", s.get("mask", "-")),
        ("missing definition", s.get("missing_definition", "-")),
        ("complete samples", str(s.get("complete_samples", "-"))),
        ("observed per view", ", ".join(map(str, s.get("observed_per_view", []))) or "-"),
        ("source", s.get("source", "-")),
        ("download", "\n".join(s.get("urls", [])) or "-"),
        ("citation", spec.citation or "-"),
        ("notes", s.get("notes", "-")),
        ("options", "\n".join(f"{o.name} ({o.type}, default {o.default}): {o.help}"
                              for o in spec.options) or "-"),
    ]
    for key, value in rows:
        facts.add_row(key, str(value))
    console.print(facts)
    results = s.get("results", [])
    if results:
        table = Table(title="published and reproduced results", title_justify="left")
        for column in ("method", "metric", "value", "setting"):
            table.add_column(column)
        for row in results:
            table.add_row(row["method"], row["metric"], f"{row['value']:.4f}", row["setting"])
        console.print(table)
    return 0


def handle_fetch(args: argparse.Namespace) -> int:
    spec = registry_from(args).dataset(args.name)
    s = spec.summary
    files = s.get("files")
    if files is None:
        console.print(f"{spec.name}: nothing to fetch ({_status(spec, args.data_dir)[0]})")
        return 0
    if not files:
        raise MvbenchError(f"dataset {spec.name!r} has no known file, checksum or download URL; "
                           f"load your copy by path (--dataset path/to/file.mat)")
    path = fetch_file(files[0], s.get("sha256"), s.get("urls", []), spec.name, args.data_dir)
    console.print(f"{spec.name}: {path} (sha256 ok)")
    return 0


def handle_verify(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    specs = ([registry.dataset(name) for name in args.names] if args.names
             else sorted(registry.datasets.values(), key=lambda s: s.name))
    table = Table(title="sha256 of dataset files")
    for column in ("dataset", "file", "result"):
        table.add_column(column)
    failed, checked = False, {}
    for spec in specs:
        files, expected = spec.summary.get("files") or [], spec.summary.get("sha256")
        path = locate(files[0], args.data_dir) if files else None
        if path is None:
            if args.names:
                table.add_row(spec.name, files[0] if files else "-", "[yellow]absent[/]")
                failed = True
            continue
        if path not in checked:
            checked[path] = sha256_file(path)
        if not expected:
            result = f"no known checksum (sha256 {checked[path]})"
        elif checked[path] == expected:
            result = "[green]ok[/]"
        else:
            result = f"[red]MISMATCH[/] (found {checked[path][:16]}..., expected {expected[:16]}...)"
            failed = True
        table.add_row(spec.name, str(path), result)
    console.print(table)
    return 1 if failed else 0
