"""Plugin: the standard benchmark files described in ``manifest.toml``, as named datasets.

Each manifest entry becomes a :class:`DatasetSpec` whose ``summary`` carries every manifest
fact (N/V/K, file, checksum, URLs, layout, published results) so listings need no loading.
Loading finds the file in the data directory (downloading it on first use, see
:func:`mvbench.data.fetch.find_or_fetch`), checks its sha256, reads it with
:mod:`mvbench.data.matfile` in the manifest's layout, checks the facts and preprocesses the views.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mvbench import toml
from mvbench.errors import MvbenchError
from mvbench.data.fetch import find_or_fetch, verify_file
from mvbench.hookspecs import hookimpl
from mvbench.data.matfile import load_mat
from mvbench.options import Option, resolve_options
from mvbench.data.preprocessing import preprocess_option, preprocess_views
from mvbench.specs import Dataset, DatasetSpec

MANIFEST = Path(__file__).with_name("manifest.toml")
_REQUIRED = ("name", "description", "citation")
_NOT_SUMMARY = ("name", "aliases", "description", "citation", "file")


@functools.cache
def load_manifest(path: Path = MANIFEST) -> tuple[dict[str, Any], ...]:
    """The manifest's entries, checked for the keys every entry needs."""
    entries = tuple(toml.loads(path.read_text(encoding="utf-8"))["dataset"])
    for entry in entries:
        absent = [key for key in _REQUIRED if key not in entry]
        if absent:
            raise ValueError(f"{path}: entry {entry.get('name', '?')!r} lacks {', '.join(absent)}")
    return entries


def _options(entry: Mapping[str, Any]) -> tuple[Option, ...]:
    return (
        preprocess_option(entry.get("preprocess", "none"),
                          "per-view feature scaling (default: what the reference loader of the published "
                          "numbers does)"),
        Option("verify", "bool", True,
               "check the file's sha256 against the manifest before loading"),
    )


def _check_facts(entry: Mapping[str, Any], found: Mapping[str, Any], path: Path) -> None:
    """A file that passed no checksum (or whose check was skipped) must still fit the facts."""
    wrong = [f"{key} {found[key]} (expected {entry[key]})" for key in ("n", "v", "k", "dims")
             if key in entry and found[key] != entry[key]]
    if wrong:
        raise MvbenchError(f"{path} does not hold dataset {entry['name']!r}: {'; '.join(wrong)}; "
                           f"replace the file")


def load_entry(entry: Mapping[str, Any], options: Mapping[str, Any], data_dir: str | Path | None) -> Dataset:
    """Load one manifest dataset from the data directory."""
    name = entry["name"]
    opts = resolve_options(_options(entry), options, owner=f"dataset {name!r}")
    if "file" not in entry:
        raise MvbenchError(f"dataset {name!r} has no known file; load your copy by path "
                           f"(--dataset path/to/file.mat)")
    path = find_or_fetch(entry["file"], entry.get("sha256"), entry.get("urls", []), name,
                         entry.get("source", ""), data_dir)
    checked = bool(opts["verify"] and entry.get("sha256"))
    if checked:
        verify_file(path, entry["sha256"], name)
    contents = load_mat(path, views=entry.get("views"), labels=entry.get("labels"),
                        orientation=entry.get("orientation", "auto"))
    found = {"n": contents.n_samples, "v": len(contents.views), "k": contents.n_clusters,
             "dims": [x.shape[1] for x in contents.views]}
    _check_facts(entry, found, path)
    views, steps = preprocess_views(contents.views, opts["preprocess"], contents.observed)
    state = "sha256 verified" if checked else "sha256 not verified"
    return Dataset(
        name=name,
        views=views,
        labels=contents.labels,
        n_clusters=contents.n_clusters,
        source=f"{path} ({state}; views {','.join(contents.view_names)}; labels {contents.label_name})",
        citation=entry["citation"],
        preprocessing=steps,
        observed=contents.observed,
        raw_views=contents.views,
        scaling=opts["preprocess"],
    )


def spec_for(entry: Mapping[str, Any]) -> DatasetSpec:
    summary = {key: value for key, value in entry.items() if key not in _NOT_SUMMARY}
    summary["files"] = [entry["file"]] if "file" in entry else []
    return DatasetSpec(
        name=entry["name"],
        load=functools.partial(load_entry, entry),
        description=entry["description"],
        citation=entry["citation"],
        options=_options(entry),
        aliases=tuple(entry.get("aliases", ())),
        summary=summary,
        default_missing="file" if "mask" in entry else "none",
    )


@hookimpl
def mvbench_datasets() -> list[DatasetSpec]:
    return [spec_for(entry) for entry in load_manifest()]
