"""A client on Grafana's path to the database: runs on a Grafana host, writes rows.

Copied into the host with PyMySQL (pure Python) by scripts/drill.py and run there with
the host's python3: it logs in as the grafana account, over TLS with the server's
certificate checked against the stack's CA, to the database's stable address, and
inserts one row every 1/RATE seconds until DURATION has passed (or the file STOP
exists). Each acknowledged insert prints ``ok <id> <time>``; each failure ``err <id>
<time> <reason>``, and the next attempt connects anew, as Grafana's pool would.

    python3 db_writer.py HOST PORT PASSWORD CAFILE RATE DURATION STOP
"""

import contextlib
import ssl
import sys
import time
from pathlib import Path

import pymysql


def main():
    host, port, password, cafile, rate, duration, stop = sys.argv[1:8]
    context = ssl.create_default_context(cafile=cafile)
    interval, end, stop = 1 / float(rate), time.time() + float(duration), Path(stop)
    connection, row = None, 0
    while time.time() < end and not stop.exists():
        row += 1
        began = time.time()
        try:
            if connection is None:
                connection = pymysql.connect(host=host, port=int(port), user="grafana", password=password,
                                             database="grafana", ssl=context, connect_timeout=2, read_timeout=3,
                                             write_timeout=3, autocommit=True)
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO promha_drill (id, at) VALUES (%s, %s)", (row, began))
            print(f"ok {row} {began:.3f}", flush=True)
        except Exception as error:  # noqa: BLE001 - every failure is a figure
            print(f"err {row} {began:.3f} {type(error).__name__}", flush=True)
            if connection is not None:
                with contextlib.suppress(Exception):  # a broken connection may not close cleanly
                    connection.close()
            connection = None
        time.sleep(max(0.0, interval - (time.time() - began)))


if __name__ == "__main__":
    main()
