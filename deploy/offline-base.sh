#!/usr/bin/env bash
# offline-base.sh: a local stand-in for the Dockerfile's base image, for a
# machine that reaches Debian's mirror but no image registry (CI, here).
#
#   deploy/offline-base.sh [TAG [BUILD_TAG]]   # python:3.12-slim, and no build image
#
# It debootstraps a minbase Debian rootfs with python3 and python3-venv,
# imports it with `docker import` and tags it TAG, so that `FROM TAG` in
# deploy/Dockerfile resolves locally and the Dockerfile stays the one users
# build. The Python is Debian's (3.11 on bookworm), not the tag's: what the
# image is tested for is how hybrid runs in it, which does not depend on it.
#
# BUILD_TAG, when given, is the Dockerfile's build stage base (BUILD_IMAGE):
# TAG with a C compiler and Python's headers added from Debian's packages.
#
# Needs root, debootstrap and a running dockerd. ROOTFS_CACHE=FILE reuses a
# rootfs tarball (written there when absent): seconds instead of a minute.
# The host's CA bundle is copied in, so pip in a build trusts what the
# host's pip trusts (a proxy's authority included).
set -euo pipefail

TAG=${1:-python:3.12-slim}
BUILD_TAG=${2:-}
SUITE=${SUITE:-bookworm}
ROOTFS_CACHE=${ROOTFS_CACHE:-}
DOCKER=${DOCKER:-docker}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

fail() { echo "offline-base: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "debootstrap needs root"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
"$DOCKER" info >/dev/null 2>&1 || fail "no docker daemon answers ($DOCKER info failed)"

mirror() {
    # The mirror the host's apt already uses: deb822 sources, then sources.list.
    # (grep -s still fails for a missing file: hence the `|| true`.)
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' || true
    } | grep -v -- '-security' | head -1
}

rootfs_tarball() {
    # Writes the tarball to $1.
    local url
    url=$(mirror || true)
    [ -n "$url" ] || fail "no Debian mirror found in the apt sources"
    rootfs=$(mktemp -d /tmp/hybrid-rootfs.XXXXXX)
    debootstrap --variant=minbase --include=python3,python3-venv \
        "$SUITE" "$rootfs" "$url" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; fail "debootstrap failed (log above)"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    if [ -s "$CA_BUNDLE" ]; then
        mkdir -p "$rootfs/etc/ssl/certs"
        cp "$CA_BUNDLE" "$rootfs$CA_BUNDLE"
    fi
    tar --numeric-owner -C "$rootfs" -cf "$1" .
}

rootfs="" tarball=""
trap 'rm -rf ${rootfs:+"$rootfs" "$rootfs.log"} ${tarball:+"$tarball.partial"}' EXIT

started=$(date +%s)
if [ -n "$ROOTFS_CACHE" ] && [ -s "$ROOTFS_CACHE" ]; then
    tarball=$ROOTFS_CACHE
else
    tarball=${ROOTFS_CACHE:-$(mktemp /tmp/hybrid-rootfs.XXXXXX.tar)}
    mkdir -p "$(dirname "$tarball")"
    rootfs_tarball "$tarball.partial"
    mv "$tarball.partial" "$tarball"
fi
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV SSL_CERT_FILE=$CA_BUNDLE" \
    --change "ENV PIP_CERT=$CA_BUNDLE" \
    --change 'CMD ["python3"]' \
    "$tarball" "$TAG" >/dev/null
[ -n "$ROOTFS_CACHE" ] || rm -f "$tarball"
echo "offline-base: $TAG from Debian $SUITE in $(( $(date +%s) - started )) s"
if [ -n "$BUILD_TAG" ]; then
    started=$(date +%s)
    printf '%s\n' "FROM $TAG" \
        "RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev python3-dev >/dev/null && rm -rf /var/lib/apt/lists/*" \
        | "$DOCKER" build --quiet --network host -t "$BUILD_TAG" - >/dev/null \
        || fail "could not add a compiler to $TAG for $BUILD_TAG"
    echo "offline-base: $BUILD_TAG ($TAG with gcc and python3-dev) in $(( $(date +%s) - started )) s"
fi
