"""The stack's access rule for the host at hand (plugin_utils/access.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: access
short_description: How the stack's tiers are reached, from the host's variables
description:
  - Reads C(stack_plain_http), C(stack_secrets_dir) and C(inventory_dir) of the host
    at hand and returns one setting of the stack's access rule.
  - C(tls) (bool), C(user) (C(promha) or empty), C(secrets) (the secrets directory),
    C(web_ca) and C(gossip_ca) (the stack's CA files), C(credential) with a second term
    (the generated credential file of that name, its path), C(cert) and C(key) with
    the service as second term (this host's files for it from the PKI step),
    C(gossip_cert) and C(gossip_key).
options:
  _terms:
    description: The setting, and for C(credential), C(cert) and C(key) its name.
    required: true
  host:
    description:
      - Read the variables of this inventory host instead of the host at hand (a play on
        the controller asking for the stack's secrets directory).
    type: str
"""

EXAMPLES = r"""
alertmanager_web_tls_enabled: "{{ lookup('promha.stack.access', 'tls') }}"
alertmanager_web_tls_cert_src: "{{ lookup('promha.stack.access', 'cert', 'alertmanager') }}"
backup_secrets_dir: "{{ lookup('promha.stack.access', 'secrets', host=groups['all'][0]) }}"
"""

RETURN = r"""
_raw:
  description: The setting (one value).
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.promha.stack.plugins.plugin_utils.access import (
    credential_path,
    gossip_files,
    stack_access,
    web_files,
)

_SIMPLE = ("tls", "user", "secrets", "web_ca", "gossip_ca")


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        of = kwargs.pop("host", None)
        if kwargs:
            raise AnsibleLookupError(f"promha.stack.access: unknown option(s) {sorted(kwargs)}; the one option is host")
        if of:
            hostvars = variables.get("hostvars") or {}
            if of not in hostvars:
                raise AnsibleLookupError(f"promha.stack.access: host {of!r} is not in the inventory")
            variables = hostvars[of]
        access = stack_access(variables.get("stack_plain_http"), variables.get("stack_secrets_dir"),
                              variables.get("inventory_dir"))
        what, *rest = [str(term) for term in terms] or [""]
        if what in _SIMPLE and not rest:
            return [access[what]]
        if what == "credential" and len(rest) == 1:
            return [credential_path(access, rest[0])]
        host = str(variables.get("inventory_hostname", ""))
        if what in ("cert", "key") and len(rest) == 1:
            return [web_files(access, host, rest[0])[what]]
        if what in ("gossip_cert", "gossip_key") and not rest:
            return [gossip_files(access, host)[what.split("_")[1]]]
        raise AnsibleLookupError(f"promha.stack.access: unknown setting {terms!r}; use one of {', '.join(_SIMPLE)}, "
                                 "credential <name>, cert <service>, key <service>, gossip_cert, gossip_key")
