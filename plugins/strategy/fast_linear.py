# Managed in the repository: the strategy ansible.cfg selects for site.yml runs.
"""fast_linear: Ansible's ``linear`` strategy, run through Mitogen when it is installed.

Mitogen keeps one Python interpreter per host for the whole run instead of
starting one (and re-importing Ansible's module utilities) for every task over
SSH. Measured on the lab (13 hosts, 2 cores): a ``stat`` on every host took
2.3 s with plain SSH + pipelining and 0.9 s through Mitogen; the whole warm
``site.yml`` run went from 128 s to 77 s with no other change.

It also loads the filter and test plugins once, in the controller's main
process, before any worker is forked: otherwise every worker (one per host and
task) imports every file under plugins/filter/ again the first time it renders
a filter. Sampled with py-spy on a warm lab run, those imports were the largest
single cost of the workers' CPU time. The same holds for the lookups: Ansible's
own, and the shipped collection's (promha.stack's model, view and access, which
the roles' variables read), whose modules Ansible compiles from source on every
import.

Plays with ``connection: local`` (the controller only: preflight, molecule's
create and destroy, which use ``async`` tasks Mitogen's local connection
stalls on) run as the stock linear strategy. The molecule scenarios use it too
(.config/molecule/config.yml): a no-op converge of the common scenario over the
docker connection took 11 s plain and 4 s through Mitogen.

Nothing in the roles depends on it. Without the ``mitogen`` package this is
the stock ``linear`` strategy, with a warning; ``ANSIBLE_STRATEGY=linear``
turns it off for one run. ansible-core 2.19 marks strategy plugins from
outside ansible.builtin as deprecated (a warning on every run): the day a
release removes them, set ``strategy = linear`` in ansible.cfg.
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.loader import filter_loader, lookup_loader, test_loader
from ansible.utils.display import Display

# The lookups of the collection shipped with the repository (promha.stack).
_COLLECTION_LOOKUPS = Path(__file__).resolve().parents[2] / "collections/ansible_collections/promha/stack/plugins/lookup"


def _preload_jinja_plugins():
    """Import every filter, test and lookup plugin here, so forked workers inherit them loaded."""
    for loader in (filter_loader, test_loader, lookup_loader):
        try:
            for _plugin in loader.all(class_only=loader is lookup_loader):
                pass
        except Exception as exc:  # noqa: BLE001 - a speed-up only; the workers load them anyway
            Display().vvv(f"fast_linear: could not preload {loader.type} plugins: {exc}")
    for path in sorted(_COLLECTION_LOOKUPS.glob("[a-z]*.py")):
        try:
            lookup_loader.get(f"promha.stack.{path.stem}", class_only=True)
        except Exception as exc:  # noqa: BLE001 - as above
            Display().vvv(f"fast_linear: could not preload the lookup promha.stack.{path.stem}: {exc}")

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:  # mitogen not installed, or too old for this ansible-core
    from ansible.plugins.strategy.linear import StrategyModule as _Linear

    Display().warning(
        f"fast_linear: Mitogen is not importable ({exc}); running the plain linear strategy. "
        "pip install -r requirements.txt to get it back."
    )

    class StrategyModule(_Linear):
        """The stock linear strategy (Mitogen missing)."""

        def __init__(self, *args, **kwargs):
            _preload_jinja_plugins()
            super().__init__(*args, **kwargs)

else:
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        """Linear strategy whose connections and module runs go through Mitogen."""

        def __init__(self, *args, **kwargs):
            _preload_jinja_plugins()
            super().__init__(*args, **kwargs)

        def run(self, iterator, play_context, result=0):
            # A play that runs only on the controller (`connection: local`: preflight,
            # molecule's create and destroy) gains nothing from Mitogen, and Mitogen's
            # local connection stalls on `async` tasks: run it as stock linear.
            play = getattr(iterator, "_play", None)
            if getattr(play, "connection", None) == "local":
                return _Linear.run(self, iterator, play_context)
            return super().run(iterator, play_context)
