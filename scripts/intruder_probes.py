#!/usr/bin/env python3
"""Run inside the lab's intruder container (a host in no inventory group): try each
probe of a plan and print what came back, one JSON object per probe.

    python3 intruder_probes.py PLAN_JSON

A probe is ``{"name", "kind": "http", "method", "url", "body"}`` or
``{"name", "kind": "mysql", "address", "port"}``. The intruder has no credentials
and trusts no CA (certificates are not checked: what is tested is whether the
daemon obeys a stranger, not whether the stranger trusts it). Standard library
only: the container has Python and nothing of the stack.
"""

import json
import socket
import ssl
import sys
import urllib.error
import urllib.request

STRANGER = ssl.create_default_context()
STRANGER.check_hostname = False
STRANGER.verify_mode = ssl.CERT_NONE


def http(probe):
    body = probe.get("body")
    request = urllib.request.Request(probe["url"], method=probe.get("method", "GET"),
                                     data=body.encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=STRANGER) as response:  # noqa: S310
            return {"status": response.status, "answer": response.read(200).decode(errors="replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "answer": error.read(200).decode(errors="replace")}
    except (OSError, ssl.SSLError) as error:
        return {"status": None, "answer": f"no connection: {error}"}


def mysql(probe):
    """The server's first packet: a handshake (10) lets a client try to log in; an error (0xff) does not."""
    try:
        with socket.create_connection((probe["address"], probe["port"]), timeout=5) as conn:
            packet = conn.recv(512)
    except OSError as error:
        return {"status": None, "answer": f"no connection: {error}"}
    if len(packet) > 4 and packet[4] == 0xFF:
        return {"status": "error packet", "answer": packet[7:].decode(errors="replace")}
    return {"status": "handshake", "answer": "the server offers a login"}


def main():
    for probe in json.loads(sys.argv[1]):
        result = {"http": http, "mysql": mysql}[probe["kind"]](probe)
        print(json.dumps({"name": probe["name"], **result}), flush=True)


if __name__ == "__main__":
    main()
