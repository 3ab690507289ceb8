"""Helpers shared by the molecule verifiers that drive live servers.

`converge` re-runs a scenario's converge playbook with extra variables (for the
drills that push a change, or a broken input, through the roles); `wait_for`
polls a check with a deadline instead of sleeping a fixed time.
"""

import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def wait_for(check, timeout, what):
    """Call `check` every 0.5 s until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError) as error:  # not up yet, or a half-formed answer
            last = error
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def fetch(url, auth=None, cafile=None, timeout=5, data=None, method=None, headers=None):
    """GET (or ``method`` with ``data``) ``url``; return the body as text.

    ``auth`` is ``(user, password)`` for basic auth; ``cafile`` the CA that must have
    issued an https server's certificate (names are checked). HTTP errors raise
    ``urllib.error.HTTPError`` with the status code.
    """
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(cafile)) if cafile and url.startswith("https:") else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return response.read().decode()


def status(request, *args, **kwargs):
    """The HTTP status of ``request(*args, **kwargs)`` (``fetch`` or a wrapper of it): 200
    when it returns, the status an ``HTTPError`` carries when it raises one."""
    try:
        request(*args, **kwargs)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def converge(scenario_dir, *extra_vars, limit=None, tags=None, inventories=(), options=()):
    """Re-run `scenario_dir`/converge.yml against the scenario's inventory; return the process.

    `output` on the result holds stdout and stderr together (ansible-core 2.19 prints
    task errors on stderr). `inventories` are further inventory sources merged over the
    scenario's (a shard added, say); `options` more ansible-playbook arguments (--check, --diff).
    """
    return run_playbook(Path(scenario_dir) / "converge.yml", *extra_vars, limit=limit, tags=tags,
                        inventories=inventories, options=options)


def run_playbook(playbook, *extra_vars, limit=None, tags=None, inventories=(), options=()):
    """Run `playbook` against the scenario's inventory (see `converge`)."""
    ephemeral = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(ephemeral / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=f"{PROJECT / 'roles'}:{PROJECT / 'tests' / 'roles'}",
               ANSIBLE_FILTER_PLUGINS=str(PROJECT / "plugins" / "filter"),
               ANSIBLE_COLLECTIONS_PATH=f"{PROJECT / 'collections'}:{Path.home() / '.ansible' / 'collections'}",
               ANSIBLE_PIPELINING="false",
               ANSIBLE_NOCOLOR="true")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(ephemeral / "inventory"),
           str(playbook)]
    for source in inventories:
        cmd += ["-i", str(source)]
    for extra in extra_vars:
        cmd += ["-e", json.dumps(extra)]
    if limit:
        cmd += ["--limit", limit]
    if tags:
        cmd += ["--tags", tags]
    cmd += list(options)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    result.output = result.stdout + result.stderr
    return result
