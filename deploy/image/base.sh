#!/usr/bin/env bash
# A Python 3.11 base image made from Debian packages, for machines that reach no image registry:
#   deploy/image/base.sh [NAME]        (default modelserve-base:bookworm)
# debootstrap (minbase + python3 and its venv module) from the mirror apt already uses, trimmed of apt's
# downloads and lists, docs, man pages, locales and the parts of the standard library a server never
# runs, imported with PATH set (an imported tarball has no ENV). Reused when the image already exists
# (build.sh names it after this script's checksum, so an edit here makes a new one); about a minute
# otherwise. No system pip: `python3 -m venv` brings the venv's own pip from Debian's wheel
# (python3-pip-whl), and Debian's python3-pip with setuptools would add 25 MB to both stages.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/image/engine.sh
NAME=${1:-modelserve-base:bookworm}

if $ENGINE image exists "$NAME" 2>/dev/null || $ENGINE image inspect "$NAME" >/dev/null 2>&1; then
  echo "base image $NAME exists: reused"
  exit 0
fi

# The mirror apt uses (deb822 sources first, then the one-line format).
MIRROR=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
if [ -z "$MIRROR" ]; then
  MIRROR=$(grep -hoE '^deb +\S+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/modelserve-rootfs.XXXXXX")
# debootstrap mounts /proc (and more) inside the tree while it works: unmount before removing, and
# never let rm cross into another filesystem.
cleanup() {
  findmnt -rn -o TARGET | grep -F "$ROOTFS/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT
echo "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOTFS" "$MIRROR" >/dev/null
# What an image never needs: downloaded .debs, package lists, docs, man pages, non-English locales.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} +
# Python's own tests, 2to3, pydoc's topics and IDLE/tkinter where present (ensurepip stays: venv needs it).
rm -rf "$ROOTFS"/usr/lib/python3.11/{test,lib2to3,pydoc_data,idlelib,tkinter,turtledemo}
tar -C "$ROOTFS" -c . | $ENGINE import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$NAME" >/dev/null
echo "base image $NAME made from Debian packages"
