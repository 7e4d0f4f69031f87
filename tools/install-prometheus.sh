#!/usr/bin/env bash
# Installs the Prometheus server that tests/monitor drives (Debian package `prometheus`), only
# when no `prometheus` binary is on PATH. Safe to run again: with the binary present it only
# says so.
#
# The tests start their own Prometheus on 127.0.0.1 with a config and storage in a temporary
# directory; they never use the packaged service. Debian's package would start that service
# (listening on 0.0.0.0:9090) from its maintainer scripts, so the install runs with a
# policy-rc.d that refuses service starts, Recommends (prometheus-node-exporter, another
# 0.0.0.0 daemon) are not installed, and if a service was started anyway (a host where
# systemd ignores policy-rc.d) it is stopped and disabled afterwards.
set -Eeuo pipefail

say() { printf '[prometheus] %s\n' "$*"; }
die() {
    printf '[prometheus] FAILED: %s\n' "$*" >&2
    exit 1
}

if command -v prometheus >/dev/null 2>&1; then
    say "already installed: $(command -v prometheus)"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install prometheus"
    SUDO=(sudo)
fi

POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=0
if [ ! -e "$POLICY" ]; then
    # exit 101 = "action forbidden by policy": invoke-rc.d and deb-systemd-invoke start nothing
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 0755 "$POLICY"
    ADDED_POLICY=1
fi
cleanup() {
    if [ "$ADDED_POLICY" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

LOG="$(mktemp -t grpcsec-prometheus-install.XXXXXX.log)"
export DEBIAN_FRONTEND=noninteractive
say "apt: installing prometheus (log: $LOG)"
"${SUDO[@]}" apt-get update -qq >"$LOG" 2>&1 || die "apt-get update failed; see $LOG"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >>"$LOG" 2>&1 ||
    die "apt-get install prometheus failed; see $LOG"

# Belt and braces: no packaged Prometheus may stay running (it would listen on 0.0.0.0:9090).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now prometheus.service >>"$LOG" 2>&1 || true
fi
if [ -x /etc/init.d/prometheus ]; then
    "${SUDO[@]}" /etc/init.d/prometheus stop >>"$LOG" 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
    "${SUDO[@]}" update-rc.d prometheus disable >>"$LOG" 2>&1 || true
fi

command -v prometheus >/dev/null 2>&1 || die "installed, but no prometheus binary on PATH"
say "installed: $(prometheus --version 2>&1 | head -n 1)"
