from batch_assets.lib.engine.transform import (
    DEFAULT_CHUNK_SIZE,
    DEMO_HASH_KEY,
    ChunkTransform,
    FileResult,
    MaskingKeyError,
    Progress,
    TransformSession,
    check_spec_sql,
    missing_keys,
    resolve_keys,
    transform_file,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEMO_HASH_KEY",
    "ChunkTransform",
    "FileResult",
    "MaskingKeyError",
    "Progress",
    "TransformSession",
    "check_spec_sql",
    "missing_keys",
    "resolve_keys",
    "transform_file",
]
