#!/usr/bin/env bash
# Build (once) the Debian 12 base image the lab hosts and molecule platforms run:
# systemd as PID 1, sshd (the lab is reached over SSH, like production),
# python3 (+ python3-apt for Ansible's apt module) and sudo.
# No registry is involved: debootstrap from the mirror the host's own apt sources
# name, then `docker import`. The tag carries a hash of this recipe, so a changed
# recipe builds a new image and an unchanged one is reused.
# Prints the image reference on its last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.lab"
repo_name=${LAB_IMAGE_REPO:-promha/debian12-systemd}
suite=bookworm
packages="python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,procps,ca-certificates,gnupg,openssh-server"

recipe_hash=$( { cat "$0"; echo "$packages"; } | sha256sum | cut -c1-12)
image="$repo_name:$recipe_hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base-image: reusing $image" >&2
  echo "$image"
  exit 0
fi

# The mirror: the first Debian (non-security) URI in the host's apt sources.
mirror=$(
  { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}';
    grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } 2>/dev/null |
  grep -v security | head -n1 || true
)
if [ -z "$mirror" ]; then
  echo "base-image: no Debian mirror found in /etc/apt/sources.list{,.d/}; add one or set a host apt source" >&2
  exit 1
fi
command -v debootstrap >/dev/null 2>&1 || { echo "base-image: debootstrap missing (run scripts/ensure-docker.sh)" >&2; exit 1; }

root="$state/rootfs-$recipe_hash"
rm -rf "$root"
mkdir -p "$state"
start=$(date +%s)
echo "base-image: debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$state/debootstrap.log" 2>&1 || {
  echo "base-image: debootstrap failed; see .lab/debootstrap.log" >&2; tail -n 20 "$state/debootstrap.log" >&2; exit 1; }

# Apt inside the image uses the same sources as the host, and arrives with fresh lists
# so a converge need not start with `apt-get update`.
rm -f "$root/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
chroot "$root" apt-get update -qq >>"$state/debootstrap.log" 2>&1
# Containers: no console gettys, no udev triggers, keep downloaded packages (shared cache volume).
chroot "$root" systemctl mask getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service >/dev/null 2>&1 || true
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/01keep-debs"
echo "lab" >"$root/etc/hostname"
: >"$root/etc/machine-id"

tar -C "$root" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
  - "$image" >/dev/null
rm -rf "$root"
echo "base-image: built $image in $(( $(date +%s) - start )) s" >&2
echo "$image"
