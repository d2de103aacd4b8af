"""User-facing errors: the CLI prints their message as one line, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MvbenchError(Exception):
    """An error caused by the user's input or environment; its message names the fix."""


class NonFiniteLossError(MvbenchError):
    """Training produced a NaN or infinite loss; the trial is recorded as failed."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(kind: str, name: str, candidates: Iterable[str]) -> MvbenchError:
    """The standard error for an unknown plugin, option or dataset name."""
    names = sorted(candidates)
    return MvbenchError(
        f"unknown {kind} {name!r}{did_you_mean(name, names)}; valid: {', '.join(names) or '(none)'}"
    )
