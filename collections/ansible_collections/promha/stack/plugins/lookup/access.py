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
  - C(secret) with a credential's name returns the generated credential's content,
    empty until the PKI step has written it.
  - C(tier) with a tier's name (C(alertmanager), C(node_exporter), C(remote_storage),
    C(grafana_metrics), C(front), ...) returns how a client reaches that tier, a
    mapping with C(tls), C(scheme), C(user), C(password) and C(ca). Those are the
    stack model's access for the tier (the tier's variables where its hosts have them,
    C(alertmanager_web_tls_enabled), ..., else the rule), with the password of the
    tier's password variable, else the generated credential.
options:
  _terms:
    description: The setting, and for C(credential), C(secret), C(tier), C(cert) and C(key) its name (for C(tiers), names).
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
node_exporter_web_basic_auth_password: "{{ lookup('promha.stack.access', 'secret', 'node_exporter_web') }}"
grafana_remote_storage_basic_auth_username: "{{ lookup('promha.stack.access', 'tier', 'remote_storage').user }}"
_prometheus_tiers: "{{ lookup('promha.stack.access', 'tiers', 'alertmanager', 'node_exporter') }}"
"""

RETURN = r"""
_raw:
  description: The setting (one value).
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.promha.stack.plugins.plugin_utils import inventory
from ansible_collections.promha.stack.plugins.plugin_utils.access import (
    TIERS,
    credential_path,
    gossip_files,
    secret,
    stack_access,
    tier_password,
    web_files,
)
from ansible_collections.promha.stack.plugins.plugin_utils.model import tiers_access

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
        templar = self._templar

        def value(name):
            # A lookup sees the variables as written; a template among them is rendered here.
            if name not in variables:
                return None
            raw = variables[name]
            return templar.template(raw) if templar is not None and isinstance(raw, str) else raw

        access = stack_access(value("stack_plain_http"), value("stack_secrets_dir"), value("inventory_dir"))
        what, *rest = [str(term) for term in terms] or [""]
        if what in _SIMPLE and not rest:
            return [access[what]]
        if what == "credential" and len(rest) == 1:
            return [credential_path(access, rest[0])]
        if what == "secret" and len(rest) == 1:
            return [secret(access, rest[0])]
        if (what == "tier" and len(rest) == 1) or what == "tiers":
            unknown = [name for name in rest if name not in TIERS]
            if unknown:
                raise AnsibleLookupError(f"promha.stack.access: unknown tier {unknown[0]!r}; one of {', '.join(TIERS)}")
            # The tiers' settings are the run's stack model's (one answer for every client),
            # computed here (that part alone) where the run set none.
            model = variables.get("_stack_model")
            tiers = model["access"] if model is not None else tiers_access(
                inventory.plain_groups(variables.get("groups") or {}), inventory.HostVarsView(variables.get("hostvars") or {}))

            def reached(tier):
                settings = tiers[tier]
                found = {key: settings[key] for key in ("tls", "scheme", "user", "ca")}
                return dict(found, password=tier_password(tier, settings, value))
            return [reached(rest[0])] if what == "tier" else [{tier: reached(tier) for tier in rest}]
        host = str(variables.get("inventory_hostname", ""))
        if what in ("cert", "key") and len(rest) == 1:
            return [web_files(access, host, rest[0])[what]]
        if what in ("gossip_cert", "gossip_key") and not rest:
            return [gossip_files(access, host)[what.split("_")[1]]]
        raise AnsibleLookupError(f"promha.stack.access: unknown setting {terms!r}; use one of {', '.join(_SIMPLE)}, "
                                 "credential <name>, secret <name>, tier <name>, tiers <name>..., cert <service>, key <service>, "
                                 "gossip_cert, gossip_key")
