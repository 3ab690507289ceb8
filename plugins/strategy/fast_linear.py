# Managed in the repository: the strategy ansible.cfg selects for site.yml runs.
"""fast_linear: Ansible's ``linear`` strategy, run through Mitogen when it is installed.

Mitogen keeps one Python interpreter per host for the whole run instead of
starting one (and re-importing Ansible's module utilities) for every task over
SSH. Measured on the lab (13 hosts, 2 cores): a ``stat`` on every host took
2.3 s with plain SSH + pipelining and 0.9 s through Mitogen; the whole warm
``site.yml`` run went from 128 s to 77 s with no other change.

Nothing in the roles depends on it. Without the ``mitogen`` package this is
the stock ``linear`` strategy, with a warning; ``ANSIBLE_STRATEGY=linear``
turns it off for one run. ansible-core 2.19 marks strategy plugins from
outside ansible.builtin as deprecated (a warning on every run): the day a
release removes them, set ``strategy = linear`` in ansible.cfg.
"""

from __future__ import annotations

from ansible.utils.display import Display

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

else:
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        """Linear strategy whose connections and module runs go through Mitogen."""
