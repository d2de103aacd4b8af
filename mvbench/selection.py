"""``--only FIELD=V1,V2``: run a slice of a grid (some methods, datasets, rates or seeds of a
suite) without editing the suite file. The records go to the same results file, so the slice
counts towards the whole suite and the leaderboard stays one table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mvbench.errors import MvbenchError, did_you_mean, unknown_name
from mvbench.sweep import PlannedTrial, SweepTrial

Selection = Mapping[str, tuple[str, ...]]
FIELDS = ("method", "dataset", "missing", "rate", "seed")
_NUMBERS = {"rate": (float, "a number such as 0.5"), "seed": (int, "an integer such as 0")}


def _names(item: SweepTrial, field: str) -> tuple[str, ...]:
    """The names a trial answers to in ``field`` (an option set also answers to its method)."""
    trial = item.trial
    if field == "method":
        return tuple(n for n in (trial.option_set, trial.method) if n)
    if field == "dataset":
        return (item.dataset_label, trial.dataset)
    return (trial.missing,)


def parse_selection(texts: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["method=rav,kmeans", "rate=0.5"]`` -> ``{"method": ("rav", "kmeans"), "rate": ("0.5",)}``;
    a repeated field adds values."""
    out: dict[str, tuple[str, ...]] = {}
    for text in texts:
        field, sep, values = text.partition("=")
        field = field.strip()
        if not sep or not field:
            raise MvbenchError(f"--only {text!r}: expected FIELD=VALUE[,VALUE...], e.g. --only rate=0.5")
        if field not in FIELDS:
            raise unknown_name("--only field", field, FIELDS)
        parts = tuple(v.strip() for v in values.split(",") if v.strip())
        if not parts:
            raise MvbenchError(f"--only {text!r} names no value; e.g. --only {field}=...")
        if field in _NUMBERS:
            convert, expected = _NUMBERS[field]
            for part in parts:
                try:
                    convert(part)
                except ValueError:
                    raise MvbenchError(f"--only {field}={part!r}: expected {expected}") from None
        out[field] = out.get(field, ()) + parts
    return out


def _matches(item: SweepTrial, field: str, value: str) -> bool:
    if field == "rate":
        return item.rate is not None and math.isclose(item.rate, float(value), abs_tol=1e-9)
    if field == "seed":
        return item.trial.seed == int(value)
    return value in _names(item, field)


def select(planned: Sequence[PlannedTrial], selection: Selection) -> list[PlannedTrial]:
    """The trials that match every field of ``selection`` (any of a field's values). A value
    that matches no trial of the grid is an error naming what the grid has."""
    items = [p.item for p in planned]
    for field, values in selection.items():
        for value in values:
            if not any(_matches(item, field, value) for item in items):
                raise MvbenchError(f"--only {field}={value}: no trial of this grid has it"
                                   f"{_choices(items, field, value)}")
    chosen = [p for p in planned
              if all(any(_matches(p.item, f, v) for v in values) for f, values in selection.items())]
    if not chosen:
        given = " ".join(f"--only {f}={','.join(v)}" for f, v in selection.items())
        raise MvbenchError(f"{given}: no trial of this grid matches all of them; "
                           f"see the grid with --dry-run")
    return chosen


def _choices(items: Sequence[SweepTrial], field: str, value: str) -> str:
    if field == "rate":
        have = sorted({f"{item.rate:g}" for item in items if item.rate is not None})
    elif field == "seed":
        have = sorted({str(item.trial.seed) for item in items}, key=int)
    else:
        have = sorted({name for item in items for name in _names(item, field)})
    return f"{did_you_mean(value, have)}; it has {', '.join(have)}"
