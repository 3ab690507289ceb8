#!/usr/bin/env python3
"""A farm of scrape targets for the sharding tests: one process, many HTTP ports.

Every port answers GET (any path) with a small Prometheus text page naming the
port, over keep-alive connections, so one lab host can stand in for hundreds of
application exporters. Test-only: installed by tests/roles/target_farm.

    target-farm.py --listen 10.213.0.61 --ports 19990 20000-20099 21000-21059
"""

import argparse
import asyncio

PAGE = (
    "# HELP farm_target_info A scrape target of the test farm.\n"
    "# TYPE farm_target_info gauge\n"
    'farm_target_info{{port="{port}"}} 1\n'
    "# HELP farm_requests_total Requests this port answered.\n"
    "# TYPE farm_requests_total counter\n"
    'farm_requests_total{{port="{port}"}} {count}\n'
)


def ports(specs):
    found = []
    for spec in specs:
        first, _, last = spec.partition("-")
        found.extend(range(int(first), int(last or first) + 1))
    return sorted(set(found))


def handler(port, counts):
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                counts[port] += 1
                body = PAGE.format(port=port, count=counts[port]).encode()
                status = b"200 OK" if head.startswith(b"GET ") else b"405 Method Not Allowed"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
    return serve


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--ports", nargs="+", required=True, help="ports or ranges (20000-20099)")
    args = parser.parse_args()
    counts = {}
    servers = []
    for port in ports(args.ports):
        counts[port] = 0
        servers.append(await asyncio.start_server(handler(port, counts), args.listen, port, backlog=64))
    print(f"target farm: {len(servers)} ports on {args.listen}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main())
