"""The stranger's tools: forged VRRP advertisements (tests/helpers/intruder_probes.py) and the port and
ICMP sweep plan (tests/helpers/intruder.py)."""

import socket
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import intruder  # noqa: E402
import intruder_probes as probes  # noqa: E402


def test_forged_advertisements_claim_ownership_from_each_peer_plain_and_in_ah():
    packets = probes.forged_vrrp_packets(40, "10.213.40.70", ["10.213.40.31", "10.213.40.32"])
    # From each of the two to the other and to VRRP's group, plain (112) and in AH (51).
    assert len(packets) == 8
    seen = set()
    for destination, packet in packets:
        version_ihl, _tos, length, _id, _frag, ttl, protocol, _sum, source, target = struct.unpack(
            "!BBHHHBBH4s4s", packet[:20])
        assert version_ihl == 0x45 and ttl == 255 and length == len(packet)
        assert socket.inet_ntoa(target) == destination
        body = packet[20:] if protocol == 112 else packet[20 + 24:]
        if protocol == 51:
            next_header, ah_words, _reserved, spi = struct.unpack("!BBHI", packet[20:28])
            assert next_header == 112 and ah_words == 4 and spi == struct.unpack("!I", source)[0]
        vers_type, vrid, priority, count, auth_type = struct.unpack("!BBBBB", body[:5])
        assert (vers_type, vrid, priority, count) == (0x21, 40, 255, 1)
        assert auth_type == (2 if protocol == 51 else 0)
        assert probes._checksum(body) == 0  # the VRRP checksum is right: keepalived reads further
        assert socket.inet_ntoa(body[8:12]) == "10.213.40.70"
        seen.add((socket.inet_ntoa(source), destination, protocol))
    assert ("10.213.40.31", "10.213.40.32", 51) in seen and ("10.213.40.32", "224.0.0.18", 112) in seen


class FakeTopology:
    vip = "10.0.0.70"

    def hosts(self, group):
        return {"all": ["db", "lb-1", "lb-2"], "loadbalancer": ["lb-1", "lb-2"]}.get(group, [])

    def address(self, host):
        return {"db": "10.0.0.11", "lb-1": "10.0.0.31", "lb-2": "10.0.0.32"}[host]

    # The stack model's flows: the front's clients call 80 and 443 on the balancers.
    model = {"flows": {host: [{"name": "front", "ports": [80, 443], "clients": True},
                              {"name": "node_exporter", "ports": [9100], "clients": False}]
                       for host in ("lb-1", "lb-2")}}


def test_the_sweep_tries_every_listening_port_everywhere_and_opens_only_the_front_and_echo():
    plan = intruder.sweep_plan(FakeTopology(), {"db": {3306, 9100}, "lb-1": {443, 80, 8080}, "lb-2": {443}})
    ports = sorted({p["port"] for p in plan if p["kind"] == "tcp"})
    assert ports == [80, 443, 3306, 8080, 9100]
    assert len([p for p in plan if p["kind"] == "tcp"]) == 4 * len(ports)  # three hosts and the floating address
    opened = sorted(p["name"] for p in plan if p["open"])
    assert opened == sorted(["lb-1 TCP 80 (sweep)", "lb-1 TCP 443 (sweep)", "lb-2 TCP 80 (sweep)",
                             "lb-2 TCP 443 (sweep)", "floating address TCP 80 (sweep)",
                             "floating address TCP 443 (sweep)", "db ICMP echo", "lb-1 ICMP echo", "lb-2 ICMP echo"])
    assert [p["type"] for p in plan if p["name"] == "db ICMP timestamp"] == [13]
