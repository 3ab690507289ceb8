"""The HA drills, one module each (dNN_<subject>.py: its docstring says what it takes away
and what it measures); common.py holds what they share. scripts/drill.py runs them.

Every drill is ``drill_<subject>(drill_lab, receiver, short) -> (figures, problems)``:
``figures`` a line of what was measured, ``problems`` the list of what went wrong
(empty: PASS). A drill whose lab lacks what it takes away raises ``common.NotChecked``
with the reason (drill.py reports it as not checked).

The drills import the lab helpers (tests/helpers: the inventory's topology, waits,
the stranger's probes) and scripts/lab.py; nothing there imports the drills.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for _path in (_ROOT / "tests" / "helpers", _ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from drills.d01_prometheus_down import drill_prometheus  # noqa: E402
from drills.d02_alertmanager_down import drill_alertmanager_down  # noqa: E402
from drills.d03_partition import drill_partition  # noqa: E402
from drills.d04_balancer import drill_balancer  # noqa: E402
from drills.d05_database import drill_database  # noqa: E402
from drills.d06_stranger import drill_intruder  # noqa: E402
from drills.d07_everything_back import drill_whole  # noqa: E402
from drills.d08_storage_outage import drill_storage_outage  # noqa: E402
from drills.d09_replaced_replica import drill_replaced_replica  # noqa: E402
from drills.d10_rolling_upgrade import drill_upgrade  # noqa: E402
from drills.d11_storage_refill import drill_storage_rebuild  # noqa: E402
from drills.d12_global_lost import drill_global_lost  # noqa: E402
from drills.d13_backup_restore import drill_backup_restore  # noqa: E402
from drills.d14_database_cluster import drill_database_cluster  # noqa: E402
from drills.d15_heartbeat import drill_heartbeat  # noqa: E402
from drills.d16_duplicate_window import drill_duplicate_window  # noqa: E402

DRILLS = [
    ("1 Prometheus replica per shard down", drill_prometheus),
    ("2 Alertmanager position 0 down", drill_alertmanager_down),
    ("3 Alertmanager host partitioned", drill_partition),
    ("4 active balancer down", drill_balancer),
    ("5 database down", drill_database),
    ("6 stranger on the network", drill_intruder),
    ("7 everything back", drill_whole),
    ("8 remote storage outage", drill_storage_outage),
    ("9 replaced replica", drill_replaced_replica),
    ("11 storage node destroyed and refilled", drill_storage_rebuild),
    ("12 federation host lost", drill_global_lost),
    ("13 backup, destroy, restore", drill_backup_restore),
    ("14 database cluster members lost", drill_database_cluster),
    ("15 every Alertmanager lost: the heartbeat stops", drill_heartbeat),
    ("16 the duplicate window after an Alertmanager host is lost", drill_duplicate_window),
    # Last: it leaves Prometheus on the new release, which site.yml without the archives refuses.
    ("10 rolling upgrade", drill_upgrade),
]


# Drills that take minutes each (hosts made anew, tiers rebuilt, long outages, a
# hundred probes) or that a scenario proves again: `make drill` runs them, --short
# (make test) leaves them out unless --only names them.
LONG_DRILLS = {2, 6, 8, 9, 11, 13, 14, 15, 16}
