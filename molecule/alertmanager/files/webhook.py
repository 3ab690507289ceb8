#!/usr/bin/env python3
"""A real webhook receiver for the alertmanager scenario (runs in its own container).

POST /hook      Alertmanager webhook: logs the time, the sender (externalURL) and the group key
GET  /log       every notification received so far, as JSON
POST /reset     forget the log
POST /drill?batch=B&count=N   expose N series drill_active{batch="B",id="0".."N-1"} 1
GET  /metrics   the drill series, scraped by the Prometheus pair (their rule turns each into an alert group)
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
LOG = []
DRILLS = {}


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body, kind="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path == "/hook":
            payload = json.loads(body)
            with LOCK:
                LOG.append({"received": time.time(), "sender": payload.get("externalURL"),
                            "group_key": payload.get("groupKey"), "status": payload.get("status"),
                            "alerts": [{"labels": a["labels"], "startsAt": a["startsAt"]} for a in payload["alerts"]]})
            return self.reply(200, "{}")
        if url.path == "/reset":
            with LOCK:
                LOG.clear()
            return self.reply(200, "{}")
        if url.path == "/drill":
            query = parse_qs(url.query)
            with LOCK:
                DRILLS[query["batch"][0]] = int(query["count"][0])
            return self.reply(200, "{}")
        return self.reply(404, "{}")

    def do_GET(self):  # noqa: N802
        if self.path == "/log":
            with LOCK:
                return self.reply(200, json.dumps(LOG))
        if self.path == "/metrics":
            with LOCK:
                lines = [f'drill_active{{batch="{b}",id="{i}"}} 1' for b, n in sorted(DRILLS.items()) for i in range(n)]
            return self.reply(200, "# TYPE drill_active gauge\n" + "\n".join(lines) + "\n", "text/plain")
        return self.reply(404, "{}")

    def log_message(self, *args):
        pass


# All interfaces: the Alertmanagers on the scenario network post here.
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()  # noqa: S104
