#!/usr/bin/env bash
# Install (if needed) and start a real PostgreSQL on 127.0.0.1 for the prediction-log tests, and create the
# role and database `defectops` (owner of the database, so tests may create their own schemas in it).
#
# Why a script: CI must run the store's tests against a real server, never skip them silently; this is the one
# place that knows how to get a server up on a fresh Debian 12 machine (as root, or with sudo).
# Idempotent: an installed package, an existing cluster, a running server, an existing role or database are
# all fine; the role's password is (re)set every time.
#
# Usage:  DEFECTOPS_TEST_POSTGRES_URL="$(bash .ci/postgres.sh [ENV_FILE])"; export DEFECTOPS_TEST_POSTGRES_URL
#   stdout: exactly one line, the URL (postgresql+psycopg://defectops:...@127.0.0.1:PORT/defectops);
#           progress goes to stderr.
#   ENV_FILE, if given: `export DEFECTOPS_TEST_POSTGRES_URL=<url>` is also written to that file (replacing
#           it), to be sourced later; when ENV_FILE is "$GITHUB_ENV", `DEFECTOPS_TEST_POSTGRES_URL=<url>` is
#           appended in GitHub's format instead.
# Settings (environment): DEFECTOPS_PG_PASSWORD (default: defectops), DEFECTOPS_PG_PORT (default: 5432; used
#   only when the cluster is created here, an existing cluster keeps its port).
set -euo pipefail

PASSWORD="${DEFECTOPS_PG_PASSWORD:-defectops}"
WANTED_PORT="${DEFECTOPS_PG_PORT:-5432}"
ENV_FILE="${1:-}"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else log "must run as root (or with sudo)"; exit 1; fi
fi

# 1. Install the server package unless a server binary is already there.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing postgresql with apt-get"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
log "PostgreSQL major version ${VERSION}"

# 2. A cluster named `main` for that version (Debian's package creates it; a minimal image may not).
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    log "creating cluster ${VERSION}/main on port ${WANTED_PORT}"
    $SUDO pg_createcluster --port "$WANTED_PORT" "$VERSION" main >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" { print $3 }')"
STATUS="$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" { print $4 }')"

# 3. Start it (works without systemd: pg_ctlcluster runs pg_ctl as the postgres user).
if [ "$STATUS" != "online" ]; then
    log "starting cluster ${VERSION}/main (port ${PORT})"
    $SUDO pg_ctlcluster "$VERSION" main start >&2
fi
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PORT" >&2

# 4. Role and database, through the local socket as the postgres superuser (peer authentication).
cd /tmp
$SUDO runuser -u postgres -- psql -p "$PORT" -X -q -v ON_ERROR_STOP=1 -v pw="$PASSWORD" >&2 <<'SQL'
SELECT 'CREATE ROLE defectops LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'defectops') \gexec
ALTER ROLE defectops WITH LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE defectops OWNER defectops'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'defectops') \gexec
SQL

# 5. Prove a password login over TCP works, exactly as the tests will connect.
PGPASSWORD="$PASSWORD" psql -X -q -h 127.0.0.1 -p "$PORT" -U defectops -d defectops -c 'SELECT 1' >/dev/null

ENCODED="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$PASSWORD")"
URL="postgresql+psycopg://defectops:${ENCODED}@127.0.0.1:${PORT}/defectops"
log "ready: ${URL/:${ENCODED}@/:***@}"
if [ -n "$ENV_FILE" ]; then
    if [ -n "${GITHUB_ENV:-}" ] && [ "$ENV_FILE" = "$GITHUB_ENV" ]; then
        printf 'DEFECTOPS_TEST_POSTGRES_URL=%s\n' "$URL" >>"$ENV_FILE"
    else
        printf 'export DEFECTOPS_TEST_POSTGRES_URL=%s\n' "$URL" >"$ENV_FILE"
    fi
fi
printf '%s\n' "$URL"
