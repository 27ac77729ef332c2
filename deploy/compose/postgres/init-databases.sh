#!/bin/bash
# Runs once, when the PostgreSQL volume is initialised (docker-entrypoint-initdb.d): one role and one database
# for MLflow's backend store, one for defectops (prediction log, audit table and heal events). Passwords come
# from the container's environment (.env); nothing is defaulted.
set -euo pipefail
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is required}"
: "${DEFECTOPS_DB_PASSWORD:?DEFECTOPS_DB_PASSWORD is required}"
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD is required}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v mlflow_pw="$MLFLOW_DB_PASSWORD" -v defectops_pw="$DEFECTOPS_DB_PASSWORD" \
    -v grafana_pw="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE defectops LOGIN PASSWORD :'defectops_pw';
CREATE DATABASE defectops OWNER defectops;
-- Grafana reads the audit tables (heal_events, alias_events) and nothing else can be written by it.
CREATE ROLE grafana_reader LOGIN PASSWORD :'grafana_pw';
\connect defectops
GRANT CONNECT ON DATABASE defectops TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE defectops IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
