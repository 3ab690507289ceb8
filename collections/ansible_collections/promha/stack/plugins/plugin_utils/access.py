"""How every tier of the stack is reached: TLS or not, the account, where the secrets are.

One rule for the whole stack, written here only. Every daemon that listens serves
TLS with a certificate of the stack's web CA and asks for the ``promha`` account,
unless the inventory sets ``stack_plain_http`` (plain HTTP, no account). The stack's
own CAs, certificates and generated passwords live under ``stack_secrets_dir``,
by default ``<inventory>/.secrets``.

The roles read it through the ``promha.stack.access`` lookup, preflight
(plugins/filter/preflight.py) and the tests through :func:`stack_access`.
"""

from __future__ import annotations

import os

# The account every tier's clients use, where the stack's defaults are on.
USER = "promha"
_TRUE = ("true", "yes", "on", "1")


def truthy(value):
    """A boolean from an inventory value (true, "yes", "1", ...); None is false."""
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def stack_access(plain_http=None, secrets_dir=None, inventory_dir=None):
    """The stack's access settings from the three inventory values that decide them.

    Returns ``{plain, tls, user, secrets, web_ca, gossip_ca}``: ``plain`` the switch,
    ``tls`` its opposite, ``user`` ``promha`` or ``''``, ``secrets`` the secrets
    directory (``secrets_dir``, else ``<inventory_dir>/.secrets``, else ``''``) and the
    two CA files in it.
    """
    plain = plain_http is not None and truthy(plain_http)
    if secrets_dir in (None, ""):
        secrets_dir = os.path.join(str(inventory_dir), ".secrets") if inventory_dir not in (None, "") else ""
    secrets = str(secrets_dir)
    return {"plain": plain, "tls": not plain, "user": "" if plain else USER, "secrets": secrets,
            "web_ca": os.path.join(secrets, "web", "ca.crt"), "gossip_ca": os.path.join(secrets, "gossip", "ca.crt")}


def web_files(access, host, service):
    """Where the PKI step puts ``host``'s certificate and key for ``service``, and the web CA."""
    base = os.path.join(access["secrets"], "web", host, service)
    return {"cert": f"{base}.crt", "key": f"{base}.key", "ca": access["web_ca"]}


def gossip_files(access, host):
    """Where the PKI step puts ``host``'s gossip certificate and key, and the gossip CA."""
    base = os.path.join(access["secrets"], "gossip", host)
    return {"cert": f"{base}.crt", "key": f"{base}.key", "ca": access["gossip_ca"]}


def credential_path(access, name):
    """The file of the generated credential ``name`` (``prometheus_web``, ...)."""
    return os.path.join(access["secrets"], "credentials", name)
