from batch_assets.lib.storage.base import FileStore, ObjectInfo, StoreConfigError
from batch_assets.lib.storage.keys import UnsafeKeyError, safe_key, safe_prefix
from batch_assets.lib.storage.local import LocalFolderStore
from batch_assets.lib.storage.s3 import DEFAULT_ATTEMPTS, RETRY_CONFIG, S3Store, retry_config

__all__ = [
    "DEFAULT_ATTEMPTS",
    "RETRY_CONFIG",
    "FileStore",
    "LocalFolderStore",
    "ObjectInfo",
    "S3Store",
    "StoreConfigError",
    "UnsafeKeyError",
    "safe_key",
    "retry_config",
    "safe_prefix",
]
