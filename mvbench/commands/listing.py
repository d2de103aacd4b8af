"""``mvbench list`` and ``mvbench show``: what is installed, and one plugin in detail."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from mvbench.console import console
from mvbench.errors import MvbenchError, unknown_name
from mvbench.options import Option
from mvbench.registry import Registry
from mvbench.specs import MethodSpec
from mvbench.commands.common import add_command, add_set_argument, parse_settings, registry_from

KINDS = ("methods", "datasets", "missingness")


def register(subparsers: argparse._SubParsersAction) -> None:
    lister = add_command(subparsers, "list", "List what the installed plugins provide.")
    lister.add_argument("kind", nargs="?", choices=KINDS, help="only this kind (default: all)")
    lister.set_defaults(handler=handle_list)
    shower = add_command(subparsers, "show", "Print a plugin's description, citation and options; for a "
                                             "dataset file (.mat path), the layout a run finds in it and the "
                                             "preprocessing it applies.")
    shower.add_argument("name", help="a method, dataset or missingness name, or a dataset file (.mat path)")
    add_set_argument(shower, "dataset.NAME=VALUE",
                     "a dataset file's option, as in run (e.g. dataset.preprocess=standardize)")
    shower.set_defaults(handler=handle_show)


def handle_list(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    for kind in [args.kind] if args.kind else KINDS:
        console.print(_listing(registry, kind))
    return 0


def _listing(registry: Registry, kind: str) -> Table:
    table = Table(title=kind)
    table.add_column("name", style="bold")
    if kind == "methods":
        table.add_column("missing views")
        table.add_column("plugin")
        table.add_column("description")
        for spec in registry.methods.values():
            table.add_row(spec.name, "handles" if spec.handles_missing else "filled by runner",
                          registry.origin[("method", spec.name)], spec.description)
    elif kind == "datasets":
        table.add_column("N/V/K")
        table.add_column("aliases")
        table.add_column("description")
        for spec in registry.datasets.values():
            s = spec.summary
            table.add_row(spec.name, f"{s.get('n', '?')}/{s.get('v', '?')}/{s.get('k', '?')}",
                          ", ".join(spec.aliases), spec.description)
    else:
        table.add_column("definition")
        for spec in registry.missingness.values():
            table.add_row(spec.name, spec.definition)
    return table


def options_table(options: tuple[Option, ...]) -> Table:
    table = Table(title="options (set with --set NAME=VALUE; ablation: one of the paper's ablation toggles)")
    _name_column(table, [o.name for o in options])
    for column in ("type", "default", "allowed", "ablation", "help"):
        table.add_column(column)
    for o in options:
        allowed = ", ".join(map(str, o.choices)) if o.choices else _bounds(o)
        default = ",".join(map(str, o.default)) if o.is_list and o.default is not None else str(o.default)
        table.add_row(o.name, o.type, default, allowed, "yes" if o.ablation else "", o.help)
    return table


def variants_table(spec: MethodSpec) -> Table:
    table = Table(title="variants (usable wherever a method name is: mvbench run -m NAME, sweep, suites)")
    _name_column(table, list(spec.variants))
    for column in ("options", "published as", "description"):
        table.add_column(column, overflow="fold")
    for name, variant in spec.variants.items():
        options = ", ".join(f"{key}={value}" for key, value in variant.options.items())
        table.add_row(name, options, variant.published or "", variant.description)
    return table


def _name_column(table: Table, names: list[str]) -> None:
    """A column of names a user must type: never wrapped, folded or cut, however narrow the
    terminal (the other columns wrap instead)."""
    table.add_column("name", no_wrap=True, min_width=max(map(len, names), default=4))


def _bounds(option: Option) -> str:
    if option.minimum is None and option.maximum is None:
        return ""
    low = "" if option.minimum is None else f"{option.minimum} <="
    high = "" if option.maximum is None else f"<= {option.maximum}"
    return f"{low} x {high}".strip()


def _find(registry: Registry, name: str) -> tuple[str, Any]:
    if name in registry.methods or name in registry.variant_names():
        return "method", registry.method(name)
    if name in registry.missingness:
        return "missingness mechanism", registry.missingness[name]
    try:
        return "dataset", registry.dataset(name)
    except Exception:
        everything = [*registry.methods, *registry.variant_names(), *registry.missingness, *registry.datasets]
        raise unknown_name("plugin name", name, everything) from None


def handle_show(args: argparse.Namespace) -> int:
    from mvbench.runner import is_path_dataset

    settings = parse_settings(args.settings)
    if is_path_dataset(args.name):
        return _show_path(args.name, settings, args.data_dir)
    if args.settings:
        raise MvbenchError(f"show --set is for a dataset file given by path (e.g. data.mat), and "
                           f"{args.name!r} is not one; drop --set")
    registry = registry_from(args)
    kind, spec = _find(registry, args.name)
    console.print(f"[bold]{spec.name}[/] ({kind}, from plugin "
                  f"{registry.origin[(kind, spec.name)]!r})", highlight=False)
    console.print(spec.description, highlight=False)
    if getattr(spec, "citation", ""):
        console.print(f"citation: {spec.citation}", highlight=False)
    if kind == "method":
        console.print("missing views: " + ("handled by the method (it receives the mask)"
                                           if spec.handles_missing else
                                           "filled by the runner (--fill)"), highlight=False)
        console.print(f"version: {spec.version} (part of every trial key and record)", highlight=False)
        for dataset, preset in spec.presets.items():
            console.print(f"preset for {dataset}: {dict(preset)}", highlight=False)
        if spec.variants:
            console.print(variants_table(spec))
    if kind == "missingness mechanism":
        console.print(f"definition: {spec.definition}", highlight=False)
    if kind == "dataset":
        if spec.aliases:
            console.print(f"aliases: {', '.join(spec.aliases)}", highlight=False)
        if spec.default_missing != "none":
            console.print(f"default missingness: {spec.default_missing} (it ships its missing-view pattern; "
                          f"--missing none runs it as complete data)", highlight=False)
        for key, value in spec.summary.items():
            console.print(f"{key}: {value}", highlight=False)
    if spec.options:
        console.print(options_table(spec.options))
    else:
        console.print("no options")
    return 0


def _show_path(path: str, settings: dict[str, dict[str, Any]], data_dir: str | None) -> int:
    """The layout a run finds in a dataset file and the preprocessing it will apply."""
    from mvbench.data.pathdataset import PATH_OPTIONS, describe_path

    if settings["method"] or settings["missing"]:
        raise MvbenchError("mvbench show FILE takes only dataset.NAME=VALUE settings (the file's options)")
    for line in describe_path(path, settings["dataset"], data_dir):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(options_table(PATH_OPTIONS))
    return 0
