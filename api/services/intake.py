"""Intake: an upload becomes a record with two encrypted, verified copies, or nothing at all.

One function, :func:`ingest`, serves the CLI and the API. Its steps, each of which may refuse
the upload with a reason:

1. the upload is streamed once into a private temporary directory (mode 0700, removed in
   ``finally``: the one place plaintext touches the disk), hashed and counted on the way; its
   first bytes decide its type (PDF, PNG, JPEG, TIFF; the name is never trusted) and reading
   stops as soon as ``intake.max_bytes`` is passed;
2. :func:`ocr.inspect.inspect_scan` opens it for real: pages are counted against
   ``intake.max_pages``, every page's size against ``ocr.max_image_pixels``, every image frame
   is decoded (a truncated JPEG is refused here, not by OCR later);
3. the same content (plaintext SHA-256) already in a live record is refused with that record's
   code, unless the caller forces it;
4. the vault is written from the temporary copy (under a fresh object id), then one catalog
   transaction creates the record with what intake learned (type, size, hash, pages, sanitised
   upload name), remembers the object and its copies, and queues what is owed: replication
   when a store was down, the metadata sidecar, and the OCR pipeline's first job. If that
   transaction fails, the copies just written are deleted.

A refused or failed upload therefore leaves no record, no object, no copy, no job and no
temporary file. Nothing here logs a file name, a title or a name: they hold students' names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from api.services.jobs import VAULT_SIDECAR, discard_on_error, queue_replication, written
from api.services.names import sanitize_upload_name
from api.services.pipeline import OCR_RASTERIZE
from api.services.review import start_review
from api.services.runtime import Runtime
from catalog import (
    Action,
    NewRecord,
    ObjectRole,
    RecordContent,
    RecordInfo,
    UserInfo,
    add_object,
    audit_denied,
    create_record,
    find_record_by_content,
    get_business_type,
    refresh_record_status,
    require,
    visible_classes,
)
from dangan.errors import (
    ConflictError,
    CorruptDataError,
    DanganError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from ocr.inspect import (
    MEDIA_TYPES,
    ScanInfo,
    inspect_scan,
    limit_pillow_pixels,
    sniff_media_type,
)
from vault import CHUNK, DIGESTS, new_hash, new_object_id

__all__ = [
    "MEDIA_TYPES",
    "RefusedUpload",
    "Upload",
    "UploadReceiver",
    "ingest",
    "private_directory",
    "receive_upload",
    "sniff_media_type",
]

log = logging.getLogger(__name__)

# Enough of the head to tell every accepted and every recognised refused type apart.
_SNIFF_BYTES = 512


@dataclass(frozen=True)
class Upload:
    """An upload received whole into the private temporary directory."""

    path: Path
    media_type: str
    size: int
    plaintext_sha256: str
    # Its hex digest in every digest the vault knows (sha256, sm3): the record keeps the one
    # its original is written in, and a twin is looked for under each, so it is found
    # whichever crypto.digest was set when the twin came in.
    digests: dict[str, str] = field(default_factory=dict)

    def digest(self, algorithm: str) -> str:
        return self.digests.get(algorithm) or self.plaintext_sha256


@dataclass(frozen=True)
class RefusedUpload:
    """An upload refused while it was being received (over the byte limit, not a scan); its
    partial file is gone already."""

    error: InvalidInputError


def private_directory() -> tempfile.TemporaryDirectory[str]:
    """A new private temporary directory (mode 0700) for uploads; use it as a context manager,
    which removes it with everything in it, whatever happens.

    :raises StoreUnavailableError: no temporary directory could be made.
    """
    try:
        return tempfile.TemporaryDirectory(prefix="dangan-intake-")
    except OSError as exc:
        raise StoreUnavailableError(
            f"no temporary directory for the upload: {exc.strerror}"
        ) from None


def ingest(
    rt: Runtime,
    source: Path | BinaryIO | Upload | RefusedUpload,
    new: NewRecord,
    *,
    actor: str,
    user: UserInfo | None = None,
    upload_name: str | None = None,
    force: bool = False,
) -> RecordInfo:
    """Check an upload, store it in both stores and create its record; return the record.

    :param source: a path, or a binary stream the caller opened (and closes), read once; or an
        upload the caller received already into a private directory it removes afterwards
        (:class:`Upload`, from :class:`UploadReceiver`), or one refused while it was received
        (:class:`RefusedUpload`: its refusal is raised after the checks every upload gets).
    :param new: the record's catalog fields.
    :param actor: the name the audit trail records.
    :param user: the person intake is done for, checked by the policy
        (:attr:`Action.record_create` on the record's security class); ``None`` for the
        operator's own scripts, audited as ``actor``.
    :param upload_name: the name the client gave the file; kept sanitised on the record
        (:func:`api.services.names.sanitize_upload_name`), never used to decide the type.
    :param force: store it even when a live record has the same content.
    :raises InvalidInputError: empty, not a scan, unreadable (truncated, damaged,
        password-protected), over a limit (bytes, pages, pixels per page), an unknown
        business type, a bad year or legacy code.
    :raises PermissionDeniedError: ``user`` may not create such a record.
    :raises ConflictError: the same content is in a live record (named when ``user`` may see
        it), or the legacy archive code is taken.
    :raises StoreUnavailableError: neither store took the copy, or no room for the upload in
        the temporary directory; nothing is left behind.
    """
    with rt.db.read() as session:
        try:
            btype = get_business_type(session, new.business_type)
        except NotFoundError:
            raise InvalidInputError(f"unknown business type {new.business_type!r}") from None
    if user is not None:
        try:
            require(
                user,
                Action.record_create,
                security_class=new.security_class or btype.default_security_class,
            )
        except PermissionDeniedError as exc:
            with rt.db.write() as session:
                audit_denied(session, user, Action.record_create, None, error=exc)
            raise
    try:
        if isinstance(source, RefusedUpload):
            raise source.error
        if isinstance(source, Upload):
            return _ingest_received(rt, source, new, actor, user, upload_name, force)
        if isinstance(source, Path):
            try:
                stream = source.open("rb")
            except OSError as exc:
                raise InvalidInputError(f"cannot read {source}: {exc.strerror}") from None
            with stream:
                return _ingest_stream(rt, stream, new, actor, user, upload_name, force)
        return _ingest_stream(rt, source, new, actor, user, upload_name, force)
    except DanganError as exc:
        log.info("upload refused", extra={"event": "intake_refused", "error": exc.code})
        raise


def _ingest_stream(
    rt: Runtime,
    stream: BinaryIO,
    new: NewRecord,
    actor: str,
    user: UserInfo | None,
    upload_name: str | None,
    force: bool,
) -> RecordInfo:
    with private_directory() as tmp:
        upload = receive_upload(stream, Path(tmp), max_bytes=rt.settings.intake.max_bytes)
        return _ingest_received(rt, upload, new, actor, user, upload_name, force)


def _ingest_received(
    rt: Runtime,
    upload: Upload,
    new: NewRecord,
    actor: str,
    user: UserInfo | None,
    upload_name: str | None,
    force: bool,
) -> RecordInfo:
    max_page_pixels = rt.settings.ocr.max_image_pixels
    limit_pillow_pixels(max_page_pixels)
    scan = inspect_scan(
        upload.path,
        upload.media_type,
        max_pages=rt.settings.intake.max_pages,
        max_page_pixels=max_page_pixels,
    )
    content = _content(
        upload,
        scan,
        sanitize_upload_name(upload_name, upload.media_type),
        rt.vault.write_suite.digest,
    )
    if not force:
        with rt.db.read() as session:
            _refuse_duplicate(session, upload, user)
    return _store(rt, upload, new, content, actor=actor, user=user, force=force)


def receive_upload(stream: BinaryIO, directory: Path, *, max_bytes: int) -> Upload:
    """Copy an upload into ``directory`` in :data:`vault.CHUNK` pieces, hashing and counting.

    The type is sniffed as soon as the first bytes are in, so a refused type is not read
    further; reading stops as soon as ``max_bytes`` is passed. On a refusal the partial file
    stays in ``directory``, which the caller removes.

    :param directory: a private directory (mode 0700) the caller removes afterwards.
    :param max_bytes: the largest upload accepted.
    :raises InvalidInputError: empty, not a scan, over ``max_bytes``, or unreadable.
    :raises StoreUnavailableError: the temporary directory has no room for it.
    """
    receiver = UploadReceiver(directory / "upload", max_bytes=max_bytes)
    try:
        while True:
            try:
                piece = stream.read(CHUNK)
            except OSError as exc:
                raise InvalidInputError(f"the upload could not be read: {exc.strerror}") from None
            if not piece:
                break
            receiver.write(piece)
    except BaseException:
        receiver.close()
        raise
    return receiver.finish()


class UploadReceiver:
    """One upload handed over piece by piece (by a parser that is given pieces rather than a
    stream to read), written into a file of the private directory, hashed and counted on the
    way; the type is sniffed as soon as the first bytes are in.

    :param path: a new file in a private directory (mode 0700) the caller removes afterwards.
    :param max_bytes: the largest upload accepted.
    :raises StoreUnavailableError: the file cannot be made.
    """

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._digests = {name: new_hash(name) for name in DIGESTS}
        self._head = b""
        self._media_type: str | None = None
        try:
            self._out: BinaryIO = path.open("xb")
        except OSError as exc:
            raise StoreUnavailableError(
                f"no room for the upload in the temporary directory: {exc.strerror}"
            ) from None

    def write(self, piece: bytes) -> None:
        """Add the next piece.

        :raises InvalidInputError: over ``max_bytes``, or the first bytes show it is no scan;
            nothing more should be written then.
        :raises StoreUnavailableError: the temporary directory has no room for it.
        """
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise InvalidInputError(
                f"the file is too large: over the limit of {self.max_bytes:,} bytes"
            )
        if self._media_type is None:
            self._head += piece[: _SNIFF_BYTES - len(self._head)]
            if len(self._head) >= _SNIFF_BYTES:
                self._media_type = sniff_media_type(self._head)
        for digest in self._digests.values():
            digest.update(piece)
        try:
            self._out.write(piece)
        except OSError as exc:
            raise StoreUnavailableError(
                f"no room for the upload in the temporary directory: {exc.strerror}"
            ) from None

    def close(self) -> None:
        """Close the file after a refusal (it stays in the directory); harmless when closed."""
        with contextlib.suppress(OSError):
            self._out.close()

    def finish(self) -> Upload:
        """The upload as received: its file, type, size and hash.

        :raises InvalidInputError: empty, or not a scan (a short file is sniffed only now).
        :raises StoreUnavailableError: the last bytes could not be written.
        """
        try:
            self._out.close()
        except OSError as exc:
            raise StoreUnavailableError(
                f"no room for the upload in the temporary directory: {exc.strerror}"
            ) from None
        media_type = self._media_type or sniff_media_type(self._head)  # a short or empty file
        digests: dict[str, str] = {name: d.hexdigest() for name, d in self._digests.items()}
        return Upload(self.path, media_type, self.size, digests["sha256"], digests)

    def discard(self) -> None:
        """Close and remove the file now (a refused upload need not wait for its directory)."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _content(upload: Upload, scan: ScanInfo, name: str, algorithm: str) -> RecordContent:
    return RecordContent(
        content_type=upload.media_type,
        size=upload.size,
        plaintext_sha256=upload.digest(algorithm),  # as its original will be written
        page_count=scan.pages,
        upload_name=name,
    )


def _refuse_duplicate(
    session: Any, upload: Upload, user: UserInfo | None, *, lock: bool = False
) -> None:
    """Refuse content a live record has already; name it only to someone who may see it.

    A record keeps its original's digest in the algorithm it was written with, so the
    upload is looked for under each (in one order, so two twins lock alike)."""
    existing = None
    for algorithm in sorted(upload.digests) or ["sha256"]:
        existing = find_record_by_content(session, upload.digest(algorithm), lock=lock)
        if existing is not None:
            break
    if existing is None:
        return
    if user is not None and existing.security_class not in visible_classes(user):
        raise ConflictError(
            "this scan is already archived in a record you may not see; ask a director"
        )
    raise ConflictError(
        f"this scan is already archived as {existing.archive_code}; force it to store it again"
    )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while piece := fh.read(CHUNK):
            yield piece


def _store(
    rt: Runtime,
    upload: Upload,
    new: NewRecord,
    content: RecordContent,
    *,
    actor: str,
    user: UserInfo | None,
    force: bool,
) -> RecordInfo:
    vault = rt.vault
    object_id = new_object_id()
    result = vault.write(object_id, _chunks(upload.path))
    with discard_on_error(vault, object_id), rt.db.write() as session:
        if result.plaintext_sha256 != upload.digest(result.algorithm):
            # Our private copy changed under us: store nothing rather than the wrong bytes.
            raise CorruptDataError("the upload changed while it was being stored")
        if not force:
            # Again, in the creating transaction and under the content's lock: of two twin
            # uploads at once, the second waits here for the first to commit, then is refused.
            _refuse_duplicate(session, upload, user, lock=True)
        record = create_record(
            session, new, actor=actor, actor_id=user.id if user else None, content=content
        )
        add_object(
            session,
            object_id=object_id,
            record_id=record.id,
            role=ObjectRole.original,
            **written(result),
        )
        status = refresh_record_status(session, record.id)
        start_review(rt, session, record, actor=actor)  # docs/review.md
        queue_replication(rt, session, object_id, result, actor=actor)
        key = record.archive_code
        rt.enqueue(session, VAULT_SIDECAR, {"archive_code": key}, key=f"sidecar:{key}", actor=actor)
        rt.enqueue(session, OCR_RASTERIZE, {"archive_code": key}, key=f"ocr:{key}", actor=actor)
    log.info(
        "record ingested",
        extra={
            "event": "record_ingest",
            "record_id": record.id,
            "archive_code": record.archive_code,
            "object_id": object_id,
            "status": status.value,
            "pages": content.page_count,
            "size": content.size,
        },
    )
    return dataclasses.replace(record, status=status)
