#!/bin/bash
# Runs once, when the PostgreSQL volume is initialised (docker-entrypoint-initdb.d): one role and one database
# for MLflow's backend store, one for defectops (prediction log, audit table and heal events). Passwords come
# from the container's environment (.env); nothing is defaulted.
set -euo pipefail
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is required}"
: "${DEFECTOPS_DB_PASSWORD:?DEFECTOPS_DB_PASSWORD is required}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v mlflow_pw="$MLFLOW_DB_PASSWORD" -v defectops_pw="$DEFECTOPS_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE defectops LOGIN PASSWORD :'defectops_pw';
CREATE DATABASE defectops OWNER defectops;
SQL
