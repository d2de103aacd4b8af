import types

import pytest

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.registry import PluginWarning, build_registry, get_registry
from mvbench.specs import MethodSpec


def test_builtins_are_discovered_through_entry_points():
    registry = build_registry()
    assert {"kmeans"} <= set(registry.methods)
    assert {"synthetic", "handwritten"} <= set(registry.datasets)
    assert {"none", "mcar", "per-view"} <= set(registry.missingness)
    assert registry.origin[("method", "kmeans")] == "kmeans"


def test_plugin_by_module_path_and_environment(monkeypatch):
    assert "probe" in build_registry(["mvbench_testplugins"]).methods
    monkeypatch.setenv("MVBENCH_PLUGINS", " mvbench_testplugins , ")
    assert "probe" in build_registry().methods
    assert "probe" in get_registry().methods


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def test_duplicate_names_are_an_error_naming_both_plugins():
    @hookimpl
    def mvbench_methods():
        return [MethodSpec(name="kmeans", fit_predict=lambda i: None, description="imposter")]

    with pytest.raises(MvbenchError) as info:
        build_registry(objects=[("imposter", _module("imposter", mvbench_methods=mvbench_methods))])
    message = str(info.value)
    assert "'kmeans'" in message and "'imposter'" in message and "both register the method" in message


def test_installed_plugin_that_fails_to_import_warns_and_others_keep_working(monkeypatch):
    import importlib.metadata

    broken = importlib.metadata.EntryPoint("broken", "no_such_plugin_xyz", "mvbench")
    installed = list(importlib.metadata.entry_points(group="mvbench"))
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*installed, broken])
    with pytest.warns(PluginWarning, match=r"plugin 'broken' .*failed to import"):
        registry = build_registry()
    assert "kmeans" in registry.methods


@pytest.mark.parametrize("how", ["-p", "env"])
def test_a_plugin_named_by_the_user_that_fails_to_import_is_an_error(monkeypatch, how):
    monkeypatch.setenv("MVBENCH_PLUGINS", "no_such_plugin_xyz" if how == "env" else "")
    with pytest.raises(MvbenchError, match=r"plugin module 'no_such_plugin_xyz' \(from (-p|\$MVBENCH_PLUGINS)\) "
                                           r"failed to import: ModuleNotFoundError"):
        build_registry(["no_such_plugin_xyz"] if how == "-p" else [])


def test_plugin_returning_invalid_spec_warns_and_is_skipped():
    @hookimpl
    def mvbench_methods():
        return ["not a spec"]

    with pytest.warns(PluginWarning, match=r"plugin 'badspec' is invalid .*expected MethodSpec"):
        registry = build_registry(objects=[("badspec", _module("badspec", mvbench_methods=mvbench_methods))])
    assert "kmeans" in registry.methods


def test_hook_with_wrong_signature_warns_and_is_skipped():
    @hookimpl
    def mvbench_trial_finished(record, unknown_argument):
        pass

    with pytest.warns(PluginWarning, match=r"plugin 'badhook' is invalid"):
        registry = build_registry(objects=[("badhook", _module("badhook",
                                                               mvbench_trial_finished=mvbench_trial_finished))])
    assert "kmeans" in registry.methods


def test_unknown_names_suggest_the_closest():
    registry = build_registry()
    with pytest.raises(MvbenchError, match="did you mean 'kmeans'"):
        registry.method("kmean")
    with pytest.raises(MvbenchError, match="did you mean 'handwritten'"):
        registry.dataset("handwriten")
    with pytest.raises(MvbenchError, match="did you mean 'mcar'"):
        registry.mechanism("mcra")
    assert registry.dataset("MFEAT").name == "handwritten"


def test_trial_finished_hook_receives_records():
    seen = []

    class Logger:
        @hookimpl
        def mvbench_trial_finished(self, record):
            seen.append(record["status"])

    registry = build_registry(objects=[("logger", Logger())])
    registry.trial_finished({"status": "ok"})
    assert seen == ["ok"]
