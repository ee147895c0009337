"""The one place that picks the file store (local folder or S3) and the engine's limits."""

from typing import Literal

import dagster as dg
from botocore.config import Config

from batch_assets.lib.engine.vendor_day import EngineOptions
from batch_assets.lib.formats import ReadLimits
from batch_assets.lib.settings import Settings, load_settings
from batch_assets.lib.storage import DEFAULT_ATTEMPTS, FileStore, LocalFolderStore, S3Store, retry_config


class FileStoreResource(dg.ConfigurableResource):
    """Where inbound, staged, rejects and outbound files live: a local folder or an S3 bucket."""

    backend: Literal["local", "s3"] = "local"
    root: str = ".data"
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    attempts: int = DEFAULT_ATTEMPTS

    def store(self) -> FileStore:
        if self.backend == "local":
            return LocalFolderStore(self.root)
        import boto3

        # Credentials come from the standard AWS chain (environment, profile, task role), never
        # from config. Path-style addressing works with every S3-compatible server.
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            config=retry_config(self.attempts).merge(Config(s3={"addressing_style": "path"})),
        )
        return S3Store(client, self.bucket, self.prefix)


class TransformEngineResource(dg.ConfigurableResource):
    """Limits of the chunked DuckDB transform: records per chunk, memory and threads, and what one file may hold."""

    chunk_size: int = EngineOptions.chunk_size
    memory_limit: str = "256MB"
    threads: int = 2
    progress_every_seconds: float = 5.0
    max_file_bytes: int = ReadLimits.max_file_bytes
    max_record_bytes: int = ReadLimits.max_record_bytes
    max_nesting_depth: int = ReadLimits.max_depth

    def options(self) -> EngineOptions:
        return EngineOptions(
            chunk_size=self.chunk_size,
            memory_limit=self.memory_limit,
            threads=self.threads,
            progress_every=self.progress_every_seconds,
            limits=ReadLimits(self.max_file_bytes, self.max_record_bytes, self.max_nesting_depth),
        )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "file_store": FileStoreResource(
            backend=settings.storage,
            root=str(settings.data_dir.resolve()),
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            attempts=settings.s3_attempts,
        ),
        "transform_engine": TransformEngineResource(
            chunk_size=settings.chunk_size,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
            max_file_bytes=settings.max_file_bytes,
            max_record_bytes=settings.max_record_bytes,
            max_nesting_depth=settings.max_nesting_depth,
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(load_settings()))
