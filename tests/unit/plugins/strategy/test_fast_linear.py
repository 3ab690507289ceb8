"""Unit tests for plugins/strategy/fast_linear.py: Mitogen when importable, stock linear otherwise."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible.plugins.strategy.linear import StrategyModule as Linear
from loadfile import load_file

PLUGIN = Path(__file__).resolve().parents[4] / "plugins" / "strategy" / "fast_linear.py"


def load(name):
    return load_file(PLUGIN, name)


def test_runs_through_mitogen_when_installed():
    pytest.importorskip("ansible_mitogen")
    import ansible_mitogen.strategy

    strategy = load("fast_linear_a").StrategyModule
    assert issubclass(strategy, ansible_mitogen.strategy.StrategyMixin)
    assert issubclass(strategy, Linear)


def test_falls_back_to_linear_with_a_warning(monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible.utils.display.Display.warning",
                        lambda self, msg, *args, **kwargs: warnings.append(msg))
    # A None entry in sys.modules makes `import ansible_mitogen...` raise ImportError.
    monkeypatch.setitem(sys.modules, "ansible_mitogen", None)
    monkeypatch.setitem(sys.modules, "ansible_mitogen.loaders", None)
    monkeypatch.setitem(sys.modules, "ansible_mitogen.strategy", None)

    strategy = load("fast_linear_b").StrategyModule
    assert issubclass(strategy, Linear)
    assert not any(cls.__module__.startswith("ansible_mitogen") for cls in strategy.__mro__)
    assert len(warnings) == 1 and "Mitogen is not importable" in warnings[0]
    assert "plain linear strategy" in warnings[0]


def test_filters_are_loaded_before_the_workers_fork():
    from ansible.plugins.loader import filter_loader

    filter_loader.add_directory(str(PLUGIN.parents[1] / "filter"))
    filter_loader._clear_caches()
    assert not filter_loader._cached_non_collection_wrappers
    load("fast_linear_c")._preload_jinja_plugins()
    # Workers are forked from this process: they inherit these instead of importing them again.
    loaded = filter_loader._cached_non_collection_wrappers
    assert {"shard_scrape_configs", "inventory_scrape_jobs", "inventory_problems"} <= set(loaded)


def test_the_lookups_are_loaded_before_the_workers_fork(monkeypatch):
    from ansible.plugins.loader import lookup_loader

    asked = []
    monkeypatch.setattr(lookup_loader, "get", lambda name, *args, **kwargs: asked.append(name))
    monkeypatch.setattr(lookup_loader, "all", lambda *args, **kwargs: asked.append("all") or iter(()))
    load("fast_linear_e")._preload_jinja_plugins()
    # Ansible's own lookups loaded here, and the collection's each by name (what the roles'
    # variables read), so that a worker finds them imported instead of compiling them again.
    assert asked[0] == "all"
    assert {"promha.stack.model", "promha.stack.view", "promha.stack.access"} <= set(asked)


def test_controller_only_plays_run_the_stock_linear_strategy(monkeypatch):
    pytest.importorskip("ansible_mitogen")
    import ansible_mitogen.strategy

    module = load("fast_linear_d")
    calls = []
    monkeypatch.setattr(module._Linear, "run", lambda self, iterator, play_context, result=0: calls.append("stock"))
    monkeypatch.setattr(ansible_mitogen.strategy.StrategyMixin, "run",
                        lambda self, iterator, play_context, result=0: calls.append("mitogen"))
    strategy = module.StrategyModule.__new__(module.StrategyModule)

    def iterator(connection):
        return SimpleNamespace(_play=SimpleNamespace(connection=connection))

    strategy.run(iterator("local"), None)
    strategy.run(iterator("ssh"), None)
    strategy.run(iterator(None), None)
    assert calls == ["stock", "mitogen", "mitogen"]
