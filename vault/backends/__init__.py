"""The stores a vault object can live in: ``fs`` (a directory) and ``s3`` (a bucket).

Both implement :class:`vault.backends.base.Backend`; nothing above them knows which is which.
"""

from vault.backends.base import Backend, ObjectInfo, ObjectStream, StoredObject, read_back
from vault.backends.fs import FsBackend
from vault.backends.s3 import S3Backend

__all__ = [
    "Backend",
    "FsBackend",
    "ObjectInfo",
    "ObjectStream",
    "S3Backend",
    "StoredObject",
    "read_back",
]
