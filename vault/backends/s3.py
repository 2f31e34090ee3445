"""The ``s3`` store: one bucket on any S3 server, through the ``minio`` SDK.

MinIO in production, SeaweedFS in the tests. Objects are stored flat under their id
(``docs/vault-format.md``, "Stores"). Writes stream as multipart uploads of ``part_size``
bytes when the length is unknown, so memory stays at a few parts whatever the size; reads
stream in ``CHUNK`` pieces and resume with a range request after a dropped connection.
Connection errors are retried with exponential backoff by urllib3 (``connect``).

This module must never let a ``minio`` or ``urllib3`` exception escape (they become
``StoreUnavailableError`` / ``NotFoundError`` here, ``from`` the original), never leave a
response unclosed or its connection unreleased, and never create or delete a bucket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from dangan.errors import DanganError, NotFoundError, StoreUnavailableError
from vault.backends.base import ObjectInfo, ObjectStream, StoredObject, Tally
from vault.ids import check_object_id, is_object_id
from vault.stream import CHUNK
from vault.suites import DigestName

__all__ = ["S3Backend"]

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 << 20  # S3's smallest multipart part
DEFAULT_PART_SIZE = MIN_PART_SIZE  # minio holds about four parts per upload in memory
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class S3Backend:
    """A store in one existing bucket.

    :param client: a configured ``minio.Minio``; :meth:`connect` builds one with timeouts
        and retries.
    :param part_size: bytes per multipart part (at least 5 MiB); a copy of up to this size
        is sent in one request. Memory per write is about four parts, and S3 allows 10,000
        parts, so the default caps an object at about 48 GiB.
    :param read_retries: how many times a read that broke off is resumed.
    """

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        name: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        read_retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError("an S3 part is at least 5 MiB")
        self._client = client
        self.bucket = bucket
        self.name = name or f"s3:{bucket}"
        self._part_size = part_size
        self._read_retries = read_retries
        self._backoff = backoff

    @classmethod
    def connect(
        cls,
        endpoint: str,
        *,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = True,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.2,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> S3Backend:
        """A store on ``endpoint`` (``host:port``) with timeouts and retries on connection
        errors and 5xx answers (exponential backoff from ``backoff`` seconds)."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=retries,
                connect=retries,
                read=retries,
                status=retries,
                backoff_factor=backoff,
                status_forcelist=(500, 502, 503, 504),
                raise_on_status=False,
            ),
            maxsize=8,
        )
        client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        return cls(
            client,
            bucket,
            name=f"s3:{endpoint}/{bucket}",
            part_size=part_size,
            read_retries=retries,
            backoff=backoff,
        )

    def __repr__(self) -> str:
        return f"S3Backend({self.name!r})"

    def _translate(self, exc: Exception, doing: str, object_id: str | None = None) -> DanganError:
        """The one place where SDK and transport errors become dangan errors."""
        if isinstance(exc, S3Error):
            if object_id is not None and exc.code in _NOT_FOUND:
                return NotFoundError(f"object {object_id} is not in store {self.name}")
            if exc.code == "NoSuchBucket":
                return StoreUnavailableError(f"store {self.name}: the bucket does not exist")
            return StoreUnavailableError(f"store {self.name}: {doing}: {exc.code}")
        if isinstance(exc, ServerError):
            return StoreUnavailableError(f"store {self.name}: {doing}: HTTP {exc.status_code}")
        if isinstance(exc, InvalidResponseError):
            return StoreUnavailableError(f"store {self.name}: {doing}: an invalid response")
        return StoreUnavailableError(f"store {self.name}: {doing}: {type(exc).__name__}")

    def put(
        self, object_id: str, chunks: Iterable[bytes], *, algorithm: DigestName = "sha256"
    ) -> StoredObject:
        check_object_id(object_id)
        reader = _ChunkReader(iter(chunks), algorithm)
        try:
            self._client.put_object(
                self.bucket,
                object_id,
                cast(BinaryIO, reader),  # put_object only ever calls read(n)
                length=-1,
                part_size=self._part_size,
                num_parallel_uploads=1,
            )
        except (MinioException, *_TRANSPORT_ERRORS, ValueError) as exc:
            if reader.source_error is not None:
                raise  # the caller's own error; minio has aborted the upload
            raise self._translate(exc, f"cannot write object {object_id}", None) from exc
        return reader.tally.result()

    def _get(self, object_id: str, offset: int) -> Any:
        try:
            return self._client.get_object(self.bucket, object_id, offset=offset)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            raise self._translate(exc, f"cannot read object {object_id}", object_id) from exc

    def open(self, object_id: str) -> ObjectStream:
        check_object_id(object_id)
        current = [self._get(object_id, 0)]

        def release() -> None:
            response = current.pop() if current else None
            if response is not None:
                response.close()
                response.release_conn()

        def chunks() -> Iterator[bytes]:
            offset, failures = 0, 0
            while True:
                try:
                    data: bytes = current[0].read(CHUNK)
                except _TRANSPORT_ERRORS as exc:
                    release()
                    failures += 1
                    if failures > self._read_retries:
                        raise self._translate(exc, f"reading object {object_id}") from exc
                    log.warning(
                        "s3 read broke off; resuming",
                        extra={"event": "s3_read_resume", "store": self.name, "offset": offset},
                    )
                    time.sleep(self._backoff * 2 ** (failures - 1))
                    current.append(self._get(object_id, offset))
                    continue
                if not data:
                    return
                offset += len(data)
                failures = 0
                yield data

        return ObjectStream(chunks(), release)

    def ensure_bucket(self) -> bool:
        """Create the bucket if it is missing; returns whether it was created.

        :raises StoreUnavailableError: the server cannot be reached or refuses.
        """
        try:
            if self._client.bucket_exists(self.bucket):
                return False
            self._client.make_bucket(self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailableError(
                f"{self.name}: cannot create the bucket ({type(exc).__name__})"
            ) from exc
        return True

    def stat(self, object_id: str) -> ObjectInfo:
        check_object_id(object_id)
        try:
            info = self._client.stat_object(self.bucket, object_id)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            raise self._translate(exc, f"cannot stat object {object_id}", object_id) from exc
        return ObjectInfo(object_id, int(info.size or 0))

    def delete(self, object_id: str) -> None:
        check_object_id(object_id)
        try:
            self._client.remove_object(self.bucket, object_id)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            error = self._translate(exc, f"cannot delete object {object_id}", object_id)
            if isinstance(error, NotFoundError):
                return
            raise error from exc

    def list(self) -> Iterator[str]:
        try:
            for obj in self._client.list_objects(self.bucket, recursive=True):
                name = obj.object_name
                if name is not None and is_object_id(name):
                    yield name
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            raise self._translate(exc, "cannot list") from exc


class _ChunkReader:
    """``read(n)`` over an iterator of chunks, as ``put_object`` wants, hashing on the way.

    Chunks are kept as a list and joined once per read, so a part costs one copy of itself
    (a growing ``bytearray`` would cost two and keep its capacity). An exception from the
    iterator is remembered, so ``put`` can tell the caller's errors from the store's.
    """

    def __init__(self, chunks: Iterator[bytes], algorithm: DigestName = "sha256") -> None:
        self._chunks = chunks
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._done = False
        self.tally = Tally(algorithm)
        self.source_error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or self._pending_size < size) and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            except BaseException as exc:
                self.source_error = exc
                raise
            if chunk:
                self._pending.append(chunk)
                self._pending_size += len(chunk)
        if size < 0 or size >= self._pending_size:
            taken, self._pending, self._pending_size = self._pending, [], 0
        else:  # whole chunks, and the head of the one that straddles ``size``
            taken, have = [], 0
            while have < size:
                chunk = self._pending.pop(0)
                if have + len(chunk) > size:
                    cut = size - have
                    self._pending.insert(0, chunk[cut:])
                    chunk = chunk[:cut]
                taken.append(chunk)
                have += len(chunk)
            self._pending_size -= size
        out = b"".join(taken)
        del taken
        self.tally.update(out)
        return out
