"""Pytest fixtures for a real S3 API on loopback: one moto server per session, a fresh bucket per test.

Import them from a conftest.py (or a test module): ``from batch_assets_tests.s3_server import
s3_bucket, s3_endpoint``. Only dummy credentials are ever used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from uuid import uuid4

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from moto.server import ThreadedMotoServer

from batch_assets.lib.storage import RETRY_CONFIG

REGION = "us-east-1"
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # No profile or config file of the developer's leaks into a test.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass(frozen=True)
class S3Bucket:
    """An empty bucket on the test server, with a client configured for it."""

    client: BaseClient
    name: str
    endpoint_url: str


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1 and a free port, shared by the whole session."""
    # One log line per request would drown the output of a failing test.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A new, uniquely named bucket, emptied and removed after the test."""
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    client = _client(s3_endpoint)
    bucket = f"test-{uuid4().hex}"
    client.create_bucket(Bucket=bucket)
    yield S3Bucket(client=client, name=bucket, endpoint_url=s3_endpoint)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if objects := [{"Key": obj["Key"]} for obj in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


@cache
def _client(endpoint_url: str) -> BaseClient:
    """One client per server: building one loads botocore's models, 0.1-0.3 s each time."""
    return boto3.session.Session(
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client(
        "s3",
        endpoint_url=endpoint_url,
        # Path-style addressing: bucket names as DNS labels of 127.0.0.1 would not resolve.
        config=RETRY_CONFIG.merge(Config(s3={"addressing_style": "path"}, max_pool_connections=16)),
    )
