#!/usr/bin/env bash
# Build (once) the Debian base image the lab hosts and molecule platforms run,
# Debian 12 (bookworm, the default) or Debian 13 (trixie): LAB_DIST=trixie.
# systemd as PID 1, sshd (the lab is reached over SSH, like production),
# python3 (+ python3-apt for Ansible's apt module) and sudo.
# No registry is involved: debootstrap from the mirror the host's own apt sources
# name, then `docker import`. The tag carries a hash of this recipe, so a changed
# recipe builds a new image and an unchanged one is reused.
# Prints the image reference on its last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state="$here/.lab"
suite=${LAB_DIST:-bookworm}
case "$suite" in
  bookworm) release=12 ;;
  trixie) release=13 ;;
  *) echo "base-image: LAB_DIST must be bookworm or trixie, not '$suite'" >&2; exit 1 ;;
esac
repo_name=${LAB_IMAGE_REPO:-promha/debian$release-systemd}
packages="python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,procps,ca-certificates,gnupg,openssh-server"

recipe_hash=$( { cat "$0"; echo "$packages $suite"; } | sha256sum | cut -c1-12)
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

# Apt inside the image uses the host's mirror (and its security mirror) for the
# image's own release, and arrives with fresh lists so a converge need not start
# with `apt-get update`.
security=$(grep -hsE '^URIs:.*security' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | head -n1 || true)
rm -f "$root/etc/apt/sources.list" "$root/etc/apt/sources.list.d/"*
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "$suite" "$suite"
  if [ -n "$security" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$security" "$suite"
  fi
} >"$root/etc/apt/sources.list.d/debian.sources"
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
