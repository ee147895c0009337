#!/usr/bin/env bash
# Install, drop demo vendor files into the local inbound folder, and start the Dagster UI and
# daemon on the embedded defaults (SQLite instance in .dagster_home, files in .data).
# The arrival sensor picks the files up within seconds; open http://127.0.0.1:3000. Once the UI is
# up, demo-markets backfills KRX and US bars, factors and the trading pipeline to daily PnL.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
# Bytecode compiled once here: every dagster process (webserver, daemon, code server, each run
# worker) would otherwise compile dagster from source, ~6 CPU-s each, where PYTHONDONTWRITEBYTECODE
# is set or site-packages is read-only.
uv sync --frozen --compile-bytecode

export DAGSTER_HOME="$PWD/.dagster_home"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# The demo profile hashes with a public demo key when BATCH_ASSETS_HASH_KEY is unset; a real
# deployment runs the production profile (the default), which refuses to load without its secret.
export BATCH_ASSETS_PROFILE="${BATCH_ASSETS_PROFILE:-demo}"
export BATCH_ASSETS_SENSOR_INTERVAL_SECONDS="${BATCH_ASSETS_SENSOR_INTERVAL_SECONDS:-10}"
export BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS="${BATCH_ASSETS_ARRIVAL_SETTLE_SECONDS:-2}"
# The demo trades the last two months (a longer book is a longer first backfill).
export BATCH_ASSETS_TRADING_START="${BATCH_ASSETS_TRADING_START:-$(date -u -d '-60 days' +%F)}"

uv run batch-assets seed-demo
port="${DAGSTER_PORT:-3000}"
uv run dagster dev -w workspace.yaml -h "${DAGSTER_HOST:-127.0.0.1}" -p "$port" &
dev=$!
trap 'kill "$dev" 2>/dev/null || true' INT TERM
uv run batch-assets demo-markets --url "http://127.0.0.1:$port" || echo "demo-markets stopped; the UI keeps running"
wait "$dev"
