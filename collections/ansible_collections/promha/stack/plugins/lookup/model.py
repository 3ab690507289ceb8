"""The stack model for the host at hand (plugin_utils/model.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: model
short_description: The stack model, computed once per run
description:
  - Returns the stack model (plugin_utils/model.py) - every host's address, the
    Prometheus shards, the global tier, the Alertmanager instances, every tier's
    endpoints and access, the certificates - as
    playbooks/preflight.yml set it on the host (C(_stack_model)), or computed from
    C(groups) and C(hostvars) where that did not run (a role included on its own).
options: {}
"""

EXAMPLES = r"""
_alertmanager_cluster: "{{ lookup('promha.stack.model').alertmanagers }}"
_prometheus_shards: "{{ lookup('promha.stack.model').shards }}"
"""

RETURN = r"""
_raw:
  description: The model, a mapping with addresses, shards, global, alertmanagers, endpoints, access and certificates.
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.promha.stack.plugins.plugin_utils.model import run_model


class LookupModule(LookupBase):
    NAME = "promha.stack.model"

    def run(self, terms, variables=None, **kwargs):
        if terms or kwargs:
            raise AnsibleLookupError(f"{self.NAME} takes no terms or options")
        return [run_model(variables or {})]
