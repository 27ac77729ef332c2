#!/usr/bin/env bash
# Install (if needed) Debian's redis-server for the event tests and benchmarks, which start their own server
# on a free loopback port in a temporary folder (tests/redis_server.py); CI must run them, never skip them.
# Idempotent and non-interactive: an installed binary is left as it is. Progress goes to stderr.
set -euo pipefail

log() { printf 'redis.sh: %s\n' "$*" >&2; }

if command -v redis-server >/dev/null 2>&1; then
    log "$(redis-server --version | cut -d' ' -f1-3) already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else log "must run as root (or with sudo)"; exit 1; fi
fi
log "installing redis-server with apt-get"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >&2
# The package may start a system server through its init script; the tests do not use it.
redis-server --version >&2
