# syntax=docker/dockerfile:1
# The MLflow tracking server of the stack: PostgreSQL backend store (psycopg 3), artifacts proxied to an
# S3-compatible store (boto3). The versions are the ones uv.lock pins (a test compares them), so the server
# and the defectops clients speak the same MLflow.
#   docker build -f deploy/docker/mlflow.Dockerfile -t defectops-mlflow:3.17.2 deploy/docker
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mlflow \
    && /opt/mlflow/bin/pip install --no-cache-dir mlflow==3.17.2 "psycopg[binary]==3.3.9" boto3==1.43.117

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10002 mlflow \
    && useradd --system --uid 10002 --gid 10002 --home-dir /home/mlflow --create-home \
       --shell /usr/sbin/nologin mlflow
COPY --from=build /opt/mlflow /opt/mlflow
ENV PATH=/opt/mlflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true
USER 10002:10002
WORKDIR /home/mlflow
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4).status == 200 else 1)"]
# The backend store URI and the artifact destination come from the environment (MLFLOW_BACKEND_STORE_URI,
# MLFLOW_ARTIFACTS_DESTINATION), so no password is on a command line.
ENTRYPOINT ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--serve-artifacts"]
