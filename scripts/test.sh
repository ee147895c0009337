#!/usr/bin/env bash
# Install everything the tests need on a fresh machine and run the whole suite.
# Needs the PostgreSQL server on 127.0.0.1:5432 (trust auth); S3 is a moto server the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
# Debian packages the tests drive: chromium (the UI through Playwright, which never downloads a
# browser here), openssh-server (a real SFTP server on loopback), poppler-utils (PDF to PNG/text).
missing=()
for pkg in chromium openssh-server poppler-utils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Bytecode compiled once here: every dagster process (webserver, daemon, code server, each run
# worker) would otherwise compile dagster from source, ~6 CPU-s each, where PYTHONDONTWRITEBYTECODE
# is set or site-packages is read-only.
uv sync --frozen --compile-bytecode

uv run ruff check batch_assets batch_assets_tests
uv run ruff format --check batch_assets batch_assets_tests
# -n 2: one worker per core. "$@" passes extra pytest options (e.g. -k, -x).
uv run pytest -n 2 "$@"
