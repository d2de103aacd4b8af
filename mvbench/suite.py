"""Suite files: ``leaderboards/NAME.toml`` parsed into a :class:`Suite` (option sets of methods,
datasets, missingness settings, seeds, grids), with every mistake a one-line error naming the
file. Planning and running a suite's trials is :mod:`mvbench.sweep`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvbench import toml
from mvbench.device import check_precision
from mvbench.errors import MvbenchError, unknown_name
from mvbench.missing import FILL_STRATEGIES
from mvbench.registry import Registry, get_registry
from mvbench.results import RECORDS_FILE, options_label, read_records

RESULTS_DIR = "results"

_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "top": ("suite", "methods", "datasets", "missing", "grid", "method_options"),
    "[suite]": ("name", "description", "seeds", "device", "precision", "epochs", "fill", "threads", "reuse"),
    "[[methods]]": ("name", "method", "options", "description", "published"),
    "[[datasets]]": ("name", "options", "label", "rate"),
    "missing": ("mechanism", "rates", "options"),
    "[[grid]]": ("methods", "datasets", "missing"),
}


@dataclass(frozen=True)
class OptionSet:
    """A named configuration of a method; an ablation is just another option set.

    ``published`` names the ablation in the dataset registry's published results (e.g.
    "without L_S"), so the leaderboard shows the paper's number for it; without it the full
    model's numbers are matched, except for a set that switches off one of the method's
    ablation toggles, which then gets none."""

    name: str
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    published: str | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of a suite. ``label`` names it in leaderboards (several entries may share a
    label, e.g. MSRCv1 and its fixed missing-view files); ``rate`` is the nominal missing rate
    of a dataset whose mask comes with the file (mechanism ``file``)."""

    name: str
    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    rate: float | None = None


@dataclass(frozen=True)
class MissingEntry:
    """One missingness setting; ``rate`` fills the mechanism's ``rate`` option when set."""

    mechanism: str
    options: Mapping[str, Any] = field(default_factory=dict)
    rate: float | None = None


@dataclass(frozen=True)
class Grid:
    option_sets: tuple[OptionSet, ...]
    datasets: tuple[DatasetEntry, ...]
    missing: tuple[MissingEntry, ...]


@dataclass(frozen=True)
class Suite:
    name: str
    seeds: tuple[int, ...]
    grids: tuple[Grid, ...]
    option_sets: tuple[OptionSet, ...]
    description: str = ""
    device: str = "auto"
    precision: str = "fp32"
    epochs: str = ""
    fill: str = "mean"
    threads: int | None = None
    path: Path | None = None
    # Suites whose records of the same trials (same keys) count for this one: not rerun, shown.
    reuse: tuple[str, ...] = ()

    @property
    def results_file(self) -> Path:
        """Where the suite's records live by default: ``<suite folder>/results/NAME/trials.jsonl``."""
        return self._results_of(self.name)

    def _results_of(self, name: str) -> Path:
        base = self.path.parent if self.path else Path(".")
        return base / RESULTS_DIR / name / RECORDS_FILE

    def records(self, results_file: Path | None = None) -> list[dict[str, Any]]:
        """The records this suite counts: its own (from ``results_file`` if given), then those of
        the suites it reuses; a trial of the suite is done if any of them holds an ok record of
        its key. New records always go to the suite's own file."""
        files = [results_file or self.results_file, *(self._results_of(name) for name in self.reuse)]
        return [record for path in files if path.is_file() for record in read_records(path)]


# --- suite files -------------------------------------------------------------------------

def _check_keys(table: Mapping[str, Any], where: str, source: str) -> None:
    allowed = _TABLE_KEYS[where]
    for key in table:
        if key not in allowed:
            error = unknown_name(f"key in {where}", key, allowed)
            raise MvbenchError(f"{source}: {error}")


def _expect(value: Any, kind: type | tuple[type, ...], what: str, source: str, example: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MvbenchError(f"{source}: {what} must be {example}, got {value!r}")
    return value


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    example = "a count (seeds = 3 means 0, 1, 2) or a list of distinct integers >= 0"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return tuple(range(value))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        return tuple(value)
    raise MvbenchError(f"{source}: [suite] seeds must be {example}, got {value!r}")


def _threads(value: Any, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MvbenchError(f"{source}: [suite] threads must be a positive integer, got {value!r}")
    return value


def _rate(value: Any, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise MvbenchError(f"{source}: {what} must be a number in [0, 1], got {value!r}")
    return float(value)


def _parse_missing(items: Any, where: str, source: str) -> tuple[MissingEntry, ...]:
    _expect(items, list, where, source, "a list of tables such as {mechanism = \"mcar\", rates = [0.5]}")
    out: list[MissingEntry] = []
    for item in items:
        _expect(item, dict, f"an entry of {where}", source, "a table with mechanism, rates, options")
        _check_keys(item, "missing", source)
        if "mechanism" not in item:
            raise MvbenchError(f"{source}: an entry of {where} lacks mechanism; e.g. mechanism = \"mcar\"")
        mechanism = _expect(item["mechanism"], str, "mechanism", source, "a string")
        options = _expect(item.get("options", {}), dict, f"options of {mechanism!r}", source, "a table")
        if "rates" in item:
            rates = _expect(item["rates"], list, f"rates of {mechanism!r}", source, "a list of numbers")
            if not rates:
                raise MvbenchError(f"{source}: rates of {mechanism!r} is empty; list at least one rate")
            out.extend(MissingEntry(mechanism, options, _rate(r, f"a rate of {mechanism!r}", source))
                       for r in rates)
        else:
            out.append(MissingEntry(mechanism, options))
    return tuple(out)


def _parse_option_sets(items: Any, shared: Mapping[str, Any], source: str,
                       method_of: Callable[[str], str]) -> tuple[OptionSet, ...]:
    _expect(items, list, "[[methods]]", source, "a list of tables ([[methods]] blocks)")
    sets: list[OptionSet] = []
    for item in items:
        _check_keys(item, "[[methods]]", source)
        if "method" not in item:
            raise MvbenchError(f"{source}: a [[methods]] entry lacks method; e.g. method = \"rav\"")
        method = _expect(item["method"], str, "method", source, "a method name")
        name = _expect(item.get("name", method), str, "name of a [[methods]] entry", source, "a string")
        options = _expect(item.get("options", {}), dict, f"options of {name!r}", source, "a table")
        base = method_of(method)  # a variant takes its method's [method_options]
        common = _expect(shared.get(base, {}), dict, f"[method_options.{base}]", source, "a table")
        published = item.get("published")
        if published is not None:
            _expect(published, str, f"published of {name!r}", source, "a string such as \"without L_S\"")
        sets.append(OptionSet(name, method, {**common, **options},
                              _expect(item.get("description", ""), str, "description", source, "a string"),
                              published))
    _unique([s.name for s in sets], "[[methods]] name", source)
    return tuple(sets)


def _parse_datasets(items: Any, source: str) -> tuple[DatasetEntry, ...]:
    _expect(items, list, "[[datasets]]", source, "a list of tables ([[datasets]] blocks)")
    entries = []
    for item in items:
        _check_keys(item, "[[datasets]]", source)
        if "name" not in item:
            raise MvbenchError(f"{source}: a [[datasets]] entry lacks name; e.g. name = \"msrcv1\"")
        name = _expect(item["name"], str, "dataset name", source, "a string")
        options = _expect(item.get("options", {}), dict, f"options of dataset {name!r}", source, "a table")
        label = _expect(item.get("label", name), str, f"label of dataset {name!r}", source, "a string")
        rate = _rate(item["rate"], f"rate of dataset {name!r}", source) if "rate" in item else None
        entries.append(DatasetEntry(name, label, options, rate))
    _unique([(e.name, options_label(dict(e.options))) for e in entries], "[[datasets]] entry", source)
    return tuple(entries)


def _unique(names: Sequence[Any], what: str, source: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise MvbenchError(f"{source}: {what} {name!r} appears twice; give each a distinct name")
        seen.add(name)


def _select(names: Any, pool: Sequence[Any], attr: str, what: str, source: str) -> tuple[Any, ...]:
    if names is None:
        return tuple(pool)
    _expect(names, list, f"[[grid]] {what}", source, f"a list of {what} names")
    by_name: dict[str, list[Any]] = {}
    for entry in pool:
        by_name.setdefault(getattr(entry, attr), []).append(entry)
    picked: list[Any] = []
    for name in names:
        if name not in by_name:
            raise MvbenchError(f"{source}: [[grid]] {unknown_name(what[:-1], name, by_name)}")
        picked.extend(by_name[name])
    return tuple(picked)


def parse_suite(data: Mapping[str, Any], source: str, path: Path | None = None,
                registry: Registry | None = None) -> Suite:
    """Build a suite from parsed TOML; every mistake is a one-line error naming ``source``.
    ``registry`` (default: the installed plugins) tells which method a variant name belongs to."""
    registry = registry or get_registry()

    def method_of(name: str) -> str:
        try:
            return registry.method(name).name
        except MvbenchError:
            return name  # an unknown name fails later with a did-you-mean, when keyed

    _check_keys(data, "top", source)
    head = _expect(data.get("suite", {}), dict, "[suite]", source, "a table")
    _check_keys(head, "[suite]", source)
    default_name = path.stem if path else None
    name = head.get("name", default_name)
    if not name:
        raise MvbenchError(f"{source}: [suite] lacks name; e.g. name = \"complete\"")
    if default_name and name != default_name:
        raise MvbenchError(f"{source}: [suite] name {name!r} differs from the file name "
                           f"{path.name!r}; rename one so the results folder and the file agree")
    fill = head.get("fill", "mean")
    if fill not in FILL_STRATEGIES:
        raise MvbenchError(f"{source}: [suite] fill {fill!r} is not one of {', '.join(FILL_STRATEGIES)}")
    shared = _expect(data.get("method_options", {}), dict, "[method_options]", source,
                     "a table of tables, e.g. [method_options.rav]")
    if "methods" not in data or "datasets" not in data:
        raise MvbenchError(f"{source}: a suite needs [[methods]] and [[datasets]] entries")
    option_sets = _parse_option_sets(data["methods"], shared, source, method_of)
    unused = set(shared) - {method_of(s.method) for s in option_sets}
    if unused:
        raise MvbenchError(f"{source}: [method_options] names {', '.join(sorted(unused))}, which no "
                           f"[[methods]] entry uses")
    datasets = _parse_datasets(data["datasets"], source)
    missing = _parse_missing(data.get("missing", [{"mechanism": "none"}]), "[[missing]]", source)
    grids = []
    for block in _expect(data.get("grid", [{}]), list, "[[grid]]", source, "a list of tables"):
        _check_keys(block, "[[grid]]", source)
        grids.append(Grid(
            _select(block.get("methods"), option_sets, "name", "methods", source),
            _select(block.get("datasets"), datasets, "name", "datasets", source),
            _parse_missing(block["missing"], "[[grid]] missing", source) if "missing" in block else missing,
        ))
    return Suite(
        name=name, seeds=_seeds(head.get("seeds", 3), source), grids=tuple(grids),
        option_sets=option_sets,
        description=_expect(head.get("description", ""), str, "[suite] description", source, "a string"),
        device=_expect(head.get("device", "auto"), str, "[suite] device", source, "a string"),
        precision=check_precision(head.get("precision", "fp32")),
        epochs=_expect(head.get("epochs", ""), str, "[suite] epochs", source, "a string"),
        fill=fill, threads=_threads(head.get("threads"), source), path=path,
        reuse=_reuse(head.get("reuse", []), name, source),
    )


def _reuse(value: Any, name: str, source: str) -> tuple[str, ...]:
    names = _expect(value, list, "[suite] reuse", source, 'a list of suite names, e.g. reuse = ["complete"]')
    if not all(isinstance(n, str) and n for n in names):
        raise MvbenchError(f'{source}: [suite] reuse must list suite names, e.g. reuse = ["complete"]')
    if name in names:
        raise MvbenchError(f"{source}: [suite] reuse names the suite itself ({name!r}); its own records always count")
    return tuple(names)


def load_suite(path: str | Path, registry: Registry | None = None) -> Suite:
    """Read ``leaderboards/NAME.toml`` (or any path); a bare NAME is looked up in ``leaderboards/``."""
    path = suite_path(path)
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except toml.TOMLDecodeError as exc:
        raise MvbenchError(f"{path}: not valid TOML: {exc}") from None
    return parse_suite(data, str(path), path, registry)


def suite_folders() -> list[Path]:
    """Where a bare suite NAME is looked up: ``./leaderboards``, then the ``leaderboards`` folder
    of the project mvbench is installed from (so suite names work from any directory)."""
    import mvbench

    project = Path(mvbench.__file__).resolve().parent.parent / "leaderboards"
    here = Path("leaderboards")
    return [here] if here.resolve() == project else [here, project]


def suite_path(name: str | Path, folders: Sequence[Path] | None = None) -> Path:
    """The suite file ``name`` (a path), or ``NAME.toml`` in the first of ``folders`` (default:
    :func:`suite_folders`) that has it; the error says where it looked."""
    path = Path(name)
    if path.suffix == ".toml" or path.exists() or path.parent != Path("."):
        if not path.is_file():
            raise MvbenchError(f"suite file {str(path)!r} not found")
        return path
    folders = suite_folders() if folders is None else folders
    for folder in folders:
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.toml")})
    hint = f"; known suites: {', '.join(known)}" if known else ""
    raise MvbenchError(f"suite {str(name)!r} not found: looked for {name}.toml in "
                       f"{' and '.join(str(f.resolve()) for f in folders)}{hint}")
