from batch_assets.lib.storage.base import FileStore, ObjectInfo, StoreConfigError
from batch_assets.lib.storage.keys import UnsafeKeyError, safe_key, safe_prefix
from batch_assets.lib.storage.local import LocalFolderStore
from batch_assets.lib.storage.s3 import RETRY_CONFIG, S3Store

__all__ = [
    "RETRY_CONFIG",
    "FileStore",
    "LocalFolderStore",
    "ObjectInfo",
    "S3Store",
    "StoreConfigError",
    "UnsafeKeyError",
    "safe_key",
    "safe_prefix",
]
