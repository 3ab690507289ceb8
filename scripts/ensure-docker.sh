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
if [ "$(ps -p 1 -o comm= 2>/dev/null)" = "systemd" ]; then
  systemctl start docker
else
  echo "docker: starting dockerd (log: .lab/dockerd.log)"
  setsid nohup dockerd >"$state/dockerd.log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if engine_answers; then
    echo "docker: engine up ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
echo "docker: the engine did not answer within 60 s; see .lab/dockerd.log" >&2
tail -n 20 "$state/dockerd.log" >&2 || true
exit 1
