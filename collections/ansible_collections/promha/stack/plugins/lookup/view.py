"""The host at hand's view of the stack model (plugin_utils/model.py, stack_view)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: view
short_description: The host at hand's view of the stack model
description:
  - Returns C(inventory_hostname | stack_view(model)) for the run's stack model (the
    one the C(promha.stack.model) lookup returns), that is the model's shared parts
    (addresses, endpoints, access, shards, global, alertmanagers, callers) and the
    host's own (address, serves, shard, replicas, instances, flows, certificates).
    Each role reads it as its C(_<role>_view).
  - A lookup rather than the filter on the model's lookup, because Ansible copies a
    lookup's result where a filter receives it, and the whole model is large. The view
    is computed here, once per templating.
options: {}
"""

RETURN = r"""
_raw:
  description: The host's view, a mapping (see the stack_view filter).
"""

EXAMPLES = r"""
# roles/node_exporter/vars/main.yml and defaults/main.yml
_node_exporter_view: "{{ lookup('promha.stack.view') }}"
node_exporter_listen_address: "{{ _node_exporter_view.address }}"
"""

from ansible_collections.promha.stack.plugins.lookup.model import LookupModule as ModelLookup
from ansible_collections.promha.stack.plugins.plugin_utils.model import stack_view


class LookupModule(ModelLookup):
    NAME = "promha.stack.view"

    def run(self, terms, variables=None, **kwargs):
        model = super().run(terms, variables, **kwargs)[0]
        return [stack_view((variables or {}).get("inventory_hostname"), model)]
