#!/usr/bin/env python3
"""A real webhook receiver for the alertmanager scenario (runs in its own container).

POST /hook      Alertmanager webhook: logs the time, the sender (externalURL) and the group key
POST /slack     a Slack incoming-webhook stand-in: logs channel, title and text of each message
SMTP :2525      a mail sink: logs sender, recipients and subject of each message
GET  /log       every notification received so far, as JSON (slack and mail ones with "kind")
POST /reset     forget the log
POST /drill?batch=B&count=N   expose N series drill_active{batch="B",id="0".."N-1"} 1
GET  /metrics   the drill series, scraped by the Prometheus pair (their rule turns each into an alert group)
"""

import json
import re
import socketserver
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
        if url.path == "/slack":
            payload = json.loads(body)
            attachment = (payload.get("attachments") or [{}])[0]
            with LOCK:
                LOG.append({"kind": "slack", "received": time.time(), "channel": payload.get("channel"),
                            "title": attachment.get("title", ""), "text": attachment.get("text", "")})
            return self.reply(200, "ok", "text/plain")
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


def address(line):
    """The address of 'MAIL FROM:<a@b> BODY=8BITMIME' or 'RCPT TO:<a@b>'."""
    found = re.search(r"<([^>]*)>", line)
    return found.group(1) if found else line.split(":", 1)[1].strip()


class Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for Alertmanager's email notifier (no TLS, no auth)."""

    def send(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.send("220 sink ESMTP")
        sender, recipients = "", []
        while line := self.rfile.readline().decode(errors="replace"):
            command = line.strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.send("250-sink\r\n250 8BITMIME" if command.startswith("EHLO") else "250 sink")
            elif command.startswith("MAIL FROM"):
                sender = address(line)
                self.send("250 ok")
            elif command.startswith("RCPT TO"):
                recipients.append(address(line))
                self.send("250 ok")
            elif command == "DATA":
                self.send("354 go ahead")
                data = []
                while (row := self.rfile.readline().decode(errors="replace")) and row.rstrip("\r\n") != ".":
                    data.append(row)
                subject = next((m.group(1).strip() for m in map(re.compile(r"^Subject:(.*)", re.I).match, data) if m), "")
                with LOCK:
                    LOG.append({"kind": "mail", "received": time.time(), "from": sender, "to": recipients,
                                "subject": subject, "body": "".join(data)})
                self.send("250 queued")
            elif command == "QUIT":
                self.send("221 bye")
                return
            else:
                self.send("250 ok")


class SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


threading.Thread(target=SmtpServer(("0.0.0.0", 2525), Smtp).serve_forever, daemon=True).start()  # noqa: S104
# All interfaces: the Alertmanagers on the scenario network post here.
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()  # noqa: S104
