#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
# Installs Debian's docker.io (and debootstrap for the base image, openssh-client
# to reach the lab hosts) when no
# engine answers, then starts dockerd in the background when no init system runs it.
# Writes its log under the repository's .lab/ folder only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.lab"
mkdir -p "$state"

engine_answers() { docker info >/dev/null 2>&1; }

need=()
engine_answers || command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
if [ "${#need[@]}" -gt 0 ]; then
  echo "docker: installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" iptables ca-certificates >/dev/null
fi

# systemd containers use several inotify instances each (systemd, journald, logind,
# path units): the kernel's default of 128 per user runs out at about a dozen of
# them, and then a unit that needs one fails to start (molecule's scenarios and the
# lab both run that many at once).
limit=/proc/sys/fs/inotify/max_user_instances
if [ -w "$limit" ] && [ "$(cat "$limit")" -lt 1024 ]; then
  echo "docker: fs.inotify.max_user_instances raised from $(cat "$limit") to 1024"
  echo 1024 > "$limit"
fi

if engine_answers; then
  echo "docker: engine already answering"
  exit 0
fi

# With systemd as init the package starts the engine itself; otherwise start it here.
# dockerd starts its own containerd and gives up when that does not answer in time
# (seen on a busy first boot: "timeout waiting for containerd to start"), so a dockerd
# that exits, or does not answer within 90 s, is stopped with its containerd and
# started again, three times at most.
if [ "$(ps -p 1 -o comm= 2>/dev/null)" = "systemd" ]; then
  systemctl start docker
fi
for attempt in 1 2 3; do
  pid=
  if [ "$(ps -p 1 -o comm= 2>/dev/null)" != "systemd" ]; then
    echo "docker: starting dockerd, attempt $attempt (log: .lab/dockerd.log)"
    setsid nohup dockerd >>"$state/dockerd.log" 2>&1 </dev/null &
    pid=$!
  fi
  for _ in $(seq 1 90); do
    if engine_answers; then
      echo "docker: engine up ($(docker version --format '{{.Server.Version}}'))"
      exit 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "docker: dockerd exited: $(tail -n 1 "$state/dockerd.log")"
      break
    fi
    sleep 1
  done
  if [ -z "$pid" ]; then
    systemctl restart docker
    continue
  fi
  kill "$pid" 2>/dev/null || true
  pkill -f 'containerd --config /var/run/docker/containerd' 2>/dev/null || true
  sleep 2
done
echo "docker: the engine did not answer after three starts; see .lab/dockerd.log" >&2
tail -n 20 "$state/dockerd.log" >&2 || true
exit 1
