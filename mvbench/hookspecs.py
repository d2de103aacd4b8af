"""Hook specifications of mvbench (pluggy project name ``mvbench``).

A plugin is a plain module (or object) with functions marked ``@hookimpl`` and named like the
specs below. Register it under the entry-point group ``mvbench`` in its package metadata,
or name it with ``-p module.path`` or in ``MVBENCH_PLUGINS`` (comma-separated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from mvbench.specs import DatasetSpec, MethodSpec, MissingnessSpec

PROJECT = "mvbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mvbench_methods() -> list[MethodSpec]:
    """Return the clustering methods this plugin contributes."""


@hookspec
def mvbench_datasets() -> list[DatasetSpec]:
    """Return the datasets this plugin contributes."""


@hookspec
def mvbench_missingness() -> list[MissingnessSpec]:
    """Return the missing-view mechanisms this plugin contributes."""


@hookspec
def mvbench_trial_finished(record: dict[str, Any]) -> None:
    """Called with every finished trial record (ok or failed), e.g. for loggers."""


def method_hook(*specs: MethodSpec) -> Callable[[], list[MethodSpec]]:
    """The ``mvbench_methods`` hook implementation of a module that contributes ``specs``, for
    the common case of a fixed list: ``mvbench_methods = method_hook(SPEC)`` in a plugin module
    is the same as writing the ``@hookimpl`` function by hand."""

    @hookimpl
    def mvbench_methods() -> list[MethodSpec]:
        return list(specs)

    return mvbench_methods
