"""Ad-hoc grids: method selectors with per-method options (benchopt's selector grammar), the
missingness a dataset runs with when none is named, and the trials of an ad-hoc sweep.

Selector grammar (``-m``)::

    rav[z_normalize=true,w_normalize=energy],kmeans     two option sets
    rav[w_normalize=[mean,energy]]                      a bracketed list: one option set per value
    probe[widths=[[4,8]]]                               a list-typed option's value in its own brackets

An option set with options is named ``NAME[opt=value,...]`` (options sorted), so boards,
plots and ``--only method=...`` show what was run; one without is named by the method.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from mvbench.errors import MvbenchError
from mvbench.registry import Registry
from mvbench.results import options_label
from mvbench.runner import Trial, is_path_dataset
from mvbench.sweep import SweepTrial

SELECTOR_EXAMPLE = 'e.g. -m "rav[z_normalize=true],kmeans"'


def _split_top(text: str, whole: str) -> list[str]:
    """Split at the commas outside brackets; unbalanced brackets are an error."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                break
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise MvbenchError(f"unbalanced brackets in -m {whole!r}; {SELECTOR_EXAMPLE}")
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _values(value: str, whole: str) -> list[str]:
    """A scalar is one value; ``[a,b]`` is one value per item (an item may be ``[4,8]``)."""
    if not value.startswith("["):
        return [value]
    if not value.endswith("]"):
        raise MvbenchError(f"-m {whole!r}: a list value must end with ']'; {SELECTOR_EXAMPLE}")
    items = _split_top(value[1:-1], whole)
    if not items:
        raise MvbenchError(f"-m {whole!r}: empty list of values; give at least one")
    return items


def parse_selectors(text: str) -> list[tuple[str, dict[str, str]]]:
    """``"rav[a=[1,2]],kmeans"`` -> ``[("rav", {"a": "1"}), ("rav", {"a": "2"}), ("kmeans", {})]``:
    a method (or variant) name with one option set per combination of listed values."""
    out: list[tuple[str, dict[str, str]]] = []
    for part in _split_top(text, text):
        name, bracket, rest = part.partition("[")
        name = name.strip()
        if not name:
            raise MvbenchError(f"-m {text!r}: a selector lacks its method name; {SELECTOR_EXAMPLE}")
        if not bracket:
            out.append((name, {}))
            continue
        if not rest.endswith("]"):
            raise MvbenchError(f"-m {text!r}: text after ']' in {part!r}; {SELECTOR_EXAMPLE}")
        grid: dict[str, list[str]] = {}
        for param in _split_top(rest[:-1], text):
            key, eq, value = param.partition("=")
            if not eq or not key.strip():
                raise MvbenchError(f"-m {text!r}: expected NAME=VALUE inside the brackets, got "
                                   f"{param!r}; {SELECTOR_EXAMPLE}")
            if key.strip() in grid:
                raise MvbenchError(f"-m {text!r}: option {key.strip()!r} is given twice for {name!r}")
            grid[key.strip()] = _values(value.strip(), text)
        out.extend((name, dict(zip(grid, combination))) for combination in itertools.product(*grid.values()))
    if not out:
        raise MvbenchError(f"-m {text!r} names no method; {SELECTOR_EXAMPLE}")
    return out


def option_set_name(method: str, options: Mapping[str, Any]) -> str | None:
    """``rav[z_normalize=true]``, or None without options (the trial then goes by its method)."""
    return f"{method}[{options_label(dict(options))}]" if options else None


def default_mechanism(registry: Registry, dataset: str) -> str:
    """The missingness a dataset runs with when none is named: ``file`` for a registry dataset
    that ships its own missing-view pattern, else ``none``."""
    if is_path_dataset(dataset):
        return "none"
    return registry.dataset(dataset).default_missing


def grid(registry: Registry, *, methods: str, datasets: Sequence[str], missing: Sequence[str],
         rates: Sequence[float], seeds: Sequence[int], by_target: Mapping[str, Mapping[str, Any]],
         fill: str) -> list[SweepTrial]:
    """The trials of an ad-hoc sweep, cell by cell with seeds innermost. ``missing`` empty means
    mcar when ``rates`` are given, else each dataset's default mechanism; only mechanisms other
    than ``none`` take the rates. ``by_target`` holds the ``--set`` values (method options
    apply to every selector, under its own options)."""
    selectors = parse_selectors(methods)
    items: list[SweepTrial] = []
    for dataset in datasets:
        mechanisms = list(missing) or ["mcar" if rates else default_mechanism(registry, dataset)]
        for mechanism in mechanisms:
            for rate in (list(rates) or [None]) if mechanism != "none" else [None]:
                missing_options = dict(by_target["missing"])
                if rate is not None:
                    missing_options["rate"] = rate
                label_rate = rate if rate is not None else (0.0 if mechanism == "none" else None)
                for name, own in selectors:
                    options = {**by_target["method"], **own}
                    items.extend(SweepTrial(
                        Trial(method=name, dataset=dataset, seed=seed, missing=mechanism,
                              method_options=options, dataset_options=dict(by_target["dataset"]),
                              missing_options=missing_options, fill=fill,
                              option_set=option_set_name(name, options)), dataset, label_rate)
                        for seed in seeds)
    return items
