"""Shared fixtures: real servers on loopback (moto S3, the machine's PostgreSQL) and settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg2
import pytest

from batch_assets.lib.settings import Settings
from batch_assets.lib.specs import VendorSpec, load_vendor_specs
from batch_assets_tests.s3_server import s3_bucket, s3_endpoint  # noqa: F401  (fixtures)
from batch_assets_tests.sftp_server import sftp_server  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parent.parent
VENDORS_DIR = REPO_ROOT / "vendors"
HASH_KEY = "test-hash-key"
POSTGRES = {
    "host": os.environ.get("BATCH_ASSETS_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BATCH_ASSETS_TEST_PG_PORT", "5432")),
    "user": os.environ.get("BATCH_ASSETS_TEST_PG_USER", "postgres"),
}


@pytest.fixture(autouse=True)
def hash_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with a known masking key, as a deployment must."""
    monkeypatch.setenv("BATCH_ASSETS_HASH_KEY", HASH_KEY)
    return HASH_KEY


@pytest.fixture(scope="session")
def demo_specs() -> dict[str, VendorSpec]:
    os.environ.setdefault("BATCH_ASSETS_HASH_KEY", HASH_KEY)
    return {s.vendor_id: s for s in load_vendor_specs(VENDORS_DIR)}


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """Settings of the embedded default: local folder storage under tmp_path, the demo vendors."""
    return Settings(
        vendors_dir=VENDORS_DIR,
        storage="local",
        data_dir=tmp_path / "data",
        arrival_settle_seconds=0,
        partitions_start="2026-01-01",
    )


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[dict[str, object]]:
    """A fresh database on the machine's PostgreSQL server, dropped at the end.

    No skip when the server is missing: CI must fail, not pass quietly without it.
    """
    name = f"batch_assets_test_{uuid4().hex[:12]}"
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**POSTGRES, "db_name": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
