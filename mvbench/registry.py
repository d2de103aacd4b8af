"""Plugin discovery and the registry of methods, datasets and missingness mechanisms.

Plugins come from the entry-point group ``mvbench`` (built-ins included), from ``-p module``
on the command line and from ``$MVBENCH_PLUGINS``. A module named with ``-p`` or
``$MVBENCH_PLUGINS`` that fails to import is an error (the user asked for it); an installed
plugin that fails to import, or any plugin that returns an invalid spec, produces a warning
naming it and is skipped; two plugins that contribute the same name are an error naming both.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from mvbench import hookspecs
from mvbench.errors import MvbenchError, unknown_name
from mvbench.specs import DatasetSpec, MethodSpec, MissingnessSpec

ENTRY_POINT_GROUP = "mvbench"
ENV_VAR = "MVBENCH_PLUGINS"

_KINDS: dict[str, tuple[str, type]] = {
    "method": ("mvbench_methods", MethodSpec),
    "dataset": ("mvbench_datasets", DatasetSpec),
    "missingness mechanism": ("mvbench_missingness", MissingnessSpec),
}


class PluginWarning(UserWarning):
    """A plugin could not be used; everything else keeps working."""


@dataclass
class Registry:
    """Everything the installed plugins contribute, by name."""

    plugin_manager: pluggy.PluginManager
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    missingness: dict[str, MissingnessSpec] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)

    def _table(self, kind: str) -> dict[str, Any]:
        return {"method": self.methods, "dataset": self.datasets,
                "missingness mechanism": self.missingness}[kind]

    def method(self, name: str) -> MethodSpec:
        """The method called ``name``, or the method that declares the variant ``name``."""
        return self.method_variant(name)[0]

    def method_variant(self, name: str) -> tuple[MethodSpec, str | None]:
        """(method, variant name or None) for a method name or a variant name."""
        if name in self.methods:
            return self.methods[name], None
        for spec in self.methods.values():
            if name in spec.variants:
                return spec, name
        raise unknown_name("method", name, [*self.methods, *self.variant_names()])

    def variant_names(self) -> list[str]:
        return [variant for spec in self.methods.values() for variant in spec.variants]

    def dataset(self, name: str) -> DatasetSpec:
        if name in self.datasets:
            return self.datasets[name]
        lowered = name.lower()
        for spec in self.datasets.values():
            if lowered == spec.name.lower() or lowered in (a.lower() for a in spec.aliases):
                return spec
        names = list(self.datasets) + [a for s in self.datasets.values() for a in s.aliases]
        raise unknown_name("dataset", name, names)

    def mechanism(self, name: str) -> MissingnessSpec:
        if name not in self.missingness:
            raise unknown_name("missingness mechanism", name, self.missingness)
        return self.missingness[name]

    def trial_finished(self, record: dict[str, Any]) -> None:
        self.plugin_manager.hook.mvbench_trial_finished(record=record)


def _plugin_modules(extra: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """(plugin name, module path, how the user named it or None) from entry points, then the
    environment, then ``extra`` (``-p``)."""
    found = [(ep.name, ep.value, None) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    env = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    return found + [(m, m, f"${ENV_VAR}") for m in env] + [(m, m, "-p") for m in extra]


def _import(value: str) -> ModuleType | Any:
    module_name, _, attr = value.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def build_registry(extra_plugins: Sequence[str] = (), *, objects: Sequence[tuple[str, Any]] = ()) -> Registry:
    """Discover and register plugins; ``objects`` are (name, plugin) pairs registered directly."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    candidates: list[tuple[str, Any]] = []
    seen_values: set[str] = set()
    for name, value, named_by in _plugin_modules(extra_plugins):
        if value in seen_values:
            continue
        seen_values.add(value)
        try:
            candidates.append((name, _import(value)))
        except Exception as exc:
            if named_by is not None:
                raise MvbenchError(
                    f"plugin module {value!r} (from {named_by}) failed to import: {type(exc).__name__}: "
                    f"{exc}; check its name and that its folder is on PYTHONPATH") from None
            # An installed plugin that is broken must not take the others down.
            warnings.warn(f"plugin {name!r} ({value}) failed to import and is skipped: "
                          f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
    candidates.extend(objects)

    registry = Registry(plugin_manager=pm)
    for name, plugin in candidates:
        if pm.is_registered(plugin):
            continue
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            warnings.warn(f"plugin {name!r} is invalid and is skipped: {exc}", PluginWarning, stacklevel=2)
            continue
        try:
            contributions = _collect(pm, plugin, name)
        except Exception as exc:
            pm.unregister(plugin)
            warnings.warn(f"plugin {name!r} is invalid and is skipped: {exc}", PluginWarning, stacklevel=2)
            continue
        for kind, spec in contributions:
            table = registry._table(kind)
            if spec.name in table:
                other = registry.origin[(kind, spec.name)]
                raise MvbenchError(
                    f"plugins {other!r} and {name!r} both register the {kind} {spec.name!r}; "
                    f"uninstall or rename one of them")
            table[spec.name] = spec
            registry.origin[(kind, spec.name)] = name
    _check_variant_names(registry)
    return registry


def _check_variant_names(registry: Registry) -> None:
    """A variant name must not hide a method or another method's variant."""
    owner: dict[str, str] = {}
    for spec in registry.methods.values():
        for variant in spec.variants:
            clash = variant if variant in registry.methods else owner.get(variant)
            if clash is not None:
                raise MvbenchError(
                    f"method {spec.name!r} declares the variant {variant!r}, which is already the "
                    f"name of {'a method' if variant in registry.methods else 'a variant of ' + repr(clash)}; "
                    f"rename the variant")
            owner[variant] = spec.name


def _collect(pm: pluggy.PluginManager, plugin: Any, name: str) -> list[tuple[str, Any]]:
    """Call this plugin's contribution hooks and validate what they return."""
    out: list[tuple[str, Any]] = []
    for kind, (hook_name, spec_type) in _KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            specs = impl.function() or []
            for spec in specs:
                if not isinstance(spec, spec_type):
                    raise TypeError(f"{hook_name}() returned {type(spec).__name__}, "
                                    f"expected {spec_type.__name__}")
                if not spec.name or not isinstance(spec.name, str):
                    raise TypeError(f"{hook_name}() returned a {kind} with an empty name")
                out.append((kind, spec))
    return out


_default: dict[tuple[str, ...], Registry] = {}


def get_registry(extra_plugins: Sequence[str] = ()) -> Registry:
    """The registry for this process (built once per set of extra plugins)."""
    key = (os.environ.get(ENV_VAR, ""), *extra_plugins)
    if key not in _default:
        _default[key] = build_registry(extra_plugins)
    return _default[key]
