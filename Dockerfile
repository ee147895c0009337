# One image for the three Dagster processes: the code location (gRPC), the webserver and the daemon.
#   docker build -t batch-assets .
#   docker run batch-assets                                   # code server on :4000 (default)
#   docker run -p 3000:3000 batch-assets dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml
#   docker run batch-assets dagster-daemon run -w workspace.yaml
# Configuration and secrets come from the environment at run time (docs/deploy.md), never the image.
# BATCH_ASSETS_HASH_KEY is required: without it the code location refuses to load (docs/deploy.md).
# The base is pinned by version, matching the lock's interpreter; pin it by digest as well where
# the registry is reachable (python:3.11.7-slim-bookworm@sha256:...).
FROM python:3.11.7-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
# Dependencies first: this layer changes only when the lock file does.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY batch_assets ./batch_assets
RUN uv sync --frozen --no-dev

FROM python:3.11.7-slim-bookworm
# A fixed numeric id: Kubernetes' runAsNonRoot and ECS can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app
WORKDIR /app
# Code, environment and vendor specs stay owned by root: the process can read them, not change them.
COPY --from=build /app /app
COPY vendors ./vendors
COPY workspace.yaml dagster.yaml ./
# Instance profiles, the webserver/daemon workspace for a separate code server and the Celery code
# location (docs/deploy.md): DAGSTER_HOME=/app/deploy/postgres or /app/deploy/aws selects a profile.
# (.dockerignore lets only those into the build context.)
COPY deploy ./deploy
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/app/dagster_home \
    BATCH_ASSETS_VENDORS_DIR=/app/vendors \
    BATCH_ASSETS_DATA_DIR=/app/data
# Only the instance homes (local compute logs, schedules' SQLite in the embedded profile) and the
# local file store are writable.
RUN mkdir -p /app/dagster_home /app/data /app/deploy/postgres/storage \
    && cp dagster.yaml /app/dagster_home/ \
    && chown -R 10001:10001 /app/dagster_home /app/data /app/deploy/postgres/storage \
    && chown 10001:10001 /app/deploy/postgres /app/deploy/aws
USER 10001:10001
EXPOSE 4000 3000
# Checks the default command (the code server); the webserver and daemon override it (docs/deploy.md).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "batch_assets.definitions", "--location-name", "batch_assets"]
