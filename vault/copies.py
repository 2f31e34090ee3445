"""Two copies of every object (双备份): the dual write, the read with failover, repair, delete.

:class:`Vault` encrypts an object once and feeds the ciphertext to the ``primary`` and the
``replica`` store at the same time (``vault.fanout``: a thread per store, bounded queues,
flat memory), then reads each copy back and checks its size and digest (SHA-256, or SM3 for
an object whose cipher suite digests with it: ``vault.suites``). It reports per
store what happened and leaves the decision (``archived`` or ``under_replicated``, which
job to queue, which audit event to write) to the caller, who also keeps the wrapped data key
and the hashes. A read takes the primary and falls back to the replica on any error or mismatch,
telling the caller which copy was bad.

This module must never serve bytes from a copy that failed a check, never report a copy as
good that it did not read back, never leave a partial copy behind when a write fails, and
never log a key or a byte of content.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from types import TracebackType
from typing import Final, Literal

from dangan.errors import (
    CorruptDataError,
    DanganError,
    KeyringError,
    NotFoundError,
    StoreUnavailableError,
)
from vault.backends.base import Backend, Tally
from vault.fanout import check_copy, write_copies
from vault.ids import check_object_id
from vault.keyring import Keyring
from vault.sealed import open_stored, sealed_prefix, stored_head_size
from vault.stream import (
    CHUNK,
    Encryption,
    WrappedKey,
    check_wrapped_key,
    default_suite,
    encrypt,
)
from vault.suites import DigestName, Suite, check_digest

__all__ = [
    "STORES",
    "CopyStatus",
    "ObjectReader",
    "StoreName",
    "Vault",
    "WriteResult",
]

log = logging.getLogger(__name__)

StoreName = Literal["primary", "replica"]
STORES: Final[tuple[StoreName, StoreName]] = ("primary", "replica")
# Errors that mean "this copy is bad or out of reach", as opposed to a keyring problem or a bug.
_COPY_ERRORS = (CorruptDataError, NotFoundError, StoreUnavailableError)
_NAMES: Final[dict[str, str]] = {"sha256": "SHA-256", "sm3": "SM3"}


@dataclass(frozen=True)
class CopyStatus:
    """One copy in one store: good (``ok``, with its size and ciphertext SHA-256) or not."""

    store: str
    ok: bool
    size: int | None = None
    sha256: str | None = None
    error: DanganError | None = None

    @property
    def reason(self) -> str | None:
        """Why the copy is not good, safe to show and to put in the audit trail."""
        return None if self.error is None else self.error.message


@dataclass(frozen=True)
class WriteResult:
    """What :meth:`Vault.write` did: the object's keys and hashes, and each copy's fate.

    Keep ``wrapped_key``, ``plaintext_sha256`` and each good copy's size and hash in the
    catalog; a record is archived only when :attr:`is_under_replicated` is false.
    """

    object_id: str
    wrapped_key: WrappedKey
    plaintext_size: int
    plaintext_sha256: str
    ciphertext_size: int
    ciphertext_sha256: str
    copies: dict[str, CopyStatus]
    algorithm: DigestName = "sha256"
    """The digest of ``plaintext_sha256``, ``ciphertext_sha256`` and each copy's hash: the
    object's suite's; keep it with them."""

    @property
    def is_under_replicated(self) -> bool:
        """Whether a store failed and a replication (:meth:`Vault.repair_copy`) is owed."""
        return not all(c.ok for c in self.copies.values())

    @property
    def failed_stores(self) -> list[str]:
        return [name for name, c in self.copies.items() if not c.ok]


class ObjectReader(Iterator[bytes]):
    """Plaintext of one object, piece by piece, from the first copy that holds up.

    If iteration raises, **discard everything received**: no good copy was left. After the
    end, :attr:`served_from` names the store the last pieces came from and
    :attr:`bad_copies` lists every copy that failed on the way (also passed, as it happens,
    to the ``on_bad_copy`` callback given to :meth:`Vault.read`).
    """

    def __init__(self) -> None:
        self.served_from: str | None = None
        self.bad_copies: list[CopyStatus] = []
        #: The cipher suite the serving copy's header names (``None`` until it is read);
        #: once the read has ended without an error, the one its bytes were checked with.
        self.suite: Suite | None = None
        self._pieces: Iterator[bytes] = iter(())

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        """Stop reading and release the store's file or connection."""
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Vault:
    """The two stores and the keyring, as one object store with two verified copies.

    :param keyring: needed to write and read; keyless work (:meth:`verify_copy` without a
        wrapped key, :meth:`repair_copy`, :meth:`delete_object`) runs without one.
    :param suite: the cipher and digest new objects are written in; ``None`` is the stream's
        default (AES-256-GCM with SHA-256). Reading takes each object's suite from its header.
    """

    def __init__(
        self,
        primary: Backend,
        replica: Backend,
        keyring: Keyring | None = None,
        *,
        suite: Suite | None = None,
    ) -> None:
        self.stores: dict[str, Backend] = {"primary": primary, "replica": replica}
        self.keyring = keyring
        self.suite = suite

    def __repr__(self) -> str:
        names = ", ".join(f"{n}={b.name!r}" for n, b in self.stores.items())
        return f"Vault({names})"

    @property
    def write_suite(self) -> Suite:
        """The suite new objects are written in."""
        return default_suite() if self.suite is None else self.suite

    def _digest(self, algorithm: str | None) -> DigestName:
        """The digest a caller's hashes are in: as named, else the one this vault writes.

        :raises InvalidInputError: a digest the vault does not know.
        """
        return self.write_suite.digest if algorithm is None else check_digest(algorithm)

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise KeyringError("this vault was opened without a keyring")
        return self.keyring

    def _store(self, name: str) -> Backend:
        try:
            return self.stores[name]
        except KeyError:
            raise ValueError(f"no store named {name!r}; stores are {STORES}") from None

    # --- writing --------------------------------------------------------------------------

    def write(
        self, object_id: str, chunks: Iterable[bytes], *, segment_size: int = CHUNK
    ) -> WriteResult:
        """Encrypt ``chunks`` once and store the ciphertext in both stores concurrently.

        Each copy is read back (size and SHA-256) before it counts. One store failing still
        succeeds, with that copy reported failed and deleted if it was stored but read back
        wrong (a store whose put failed is left as it was); the caller marks the record
        under-replicated and queues a repair.

        :param chunks: the plaintext in any chunking; an exception it raises abandons the
            write, leaves nothing in either store and propagates unchanged.
        :raises StoreUnavailableError: neither copy could be written and verified; nothing
            is left behind.
        :raises KeyringError: no keyring, or it has no current key.
        """
        encryption = encrypt(
            object_id, chunks, self._keyring(), segment_size=segment_size, suite=self.suite
        )
        return self._store_encrypted(object_id, encryption, b"")

    def write_sealed(
        self, object_id: str, chunks: Iterable[bytes], *, segment_size: int = CHUNK
    ) -> WriteResult:
        """Like :meth:`write`, but the object carries its own wrapped data key in front
        (``docs/vault-format.md``, "Sealed objects"), so the stores and the keyring alone open
        it (:meth:`read_sealed`). Writing an existing id replaces both copies; a store whose
        put fails keeps the copy it had.

        :attr:`WriteResult.ciphertext_size` and the copies' sizes and hashes cover the whole
        stored bytes, prefix included; :meth:`read` with the returned wrapped key, and
        :meth:`verify_copy` and :meth:`repair_copy`, work on sealed objects as on any other.

        :raises StoreUnavailableError: neither copy could be written and verified.
        :raises KeyringError: no keyring, or it has no current key.
        """
        encryption = encrypt(
            object_id, chunks, self._keyring(), segment_size=segment_size, suite=self.suite
        )
        return self._store_encrypted(object_id, encryption, sealed_prefix(encryption.wrapped_key))

    def _store_encrypted(
        self, object_id: str, encryption: Encryption, prefix: bytes
    ) -> WriteResult:
        """Feed ``prefix`` and the ciphertext to both stores, verify and report each copy."""
        started = time.monotonic()
        pieces = chain([prefix], encryption) if prefix else encryption
        outcomes = write_copies(
            object_id,
            pieces,
            {n: self.stores[n] for n in STORES},
            algorithm=encryption.suite.digest,
        )
        # Only a store whose put completed holds anything of this write; a put that raised
        # replaced nothing (puts are atomic), so what that store holds under the id (an
        # earlier version, when an id is written again) is left alone.
        written = [name for name, outcome in outcomes.items() if outcome.written]
        copies: dict[str, CopyStatus] = {}
        for name, outcome in outcomes.items():
            if outcome.stored is not None:
                copies[name] = CopyStatus(name, True, outcome.stored.size, outcome.stored.sha256)
            elif isinstance(outcome.error, DanganError):
                copies[name] = CopyStatus(name, False, error=outcome.error)
            else:  # a bug, not a store failing: remove what this write stored, let it surface
                self._discard(object_id, written)
                raise outcome.error or RuntimeError(f"the copy to {name} stopped without a result")

        good = [c for c in copies.values() if c.ok]
        if good:
            # A copy only completes after the last piece, so the encryption has finished.
            expected = (len(prefix) + encryption.result.ciphertext_size, good[0].sha256)
            if any((c.size, c.sha256) != expected for c in good):
                problem = CorruptDataError(f"object {object_id}: the copies do not agree")
                copies = {n: CopyStatus(n, False, error=problem) for n in copies}
                good = []

        failed = [name for name, c in copies.items() if not c.ok]
        # A copy this write stored that then failed its check: never leave it behind.
        self._discard(object_id, [name for name in failed if name in written])
        if not good:
            reasons = "; ".join(f"{n}: {c.reason}" for n, c in copies.items())
            raise StoreUnavailableError(f"object {object_id} could not be stored ({reasons})")
        result = encryption.result

        for name in failed:
            log.warning(
                "vault copy failed",
                extra={
                    "event": "vault_copy_failed",
                    "object_id": object_id,
                    "store": name,
                    "reason": copies[name].reason,
                },
            )
        log.info(
            "vault object written",
            extra={
                "event": "vault_write",
                "object_id": object_id,
                "size": result.plaintext_size,
                "stores_ok": len(good),
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return WriteResult(
            object_id=object_id,
            wrapped_key=result.wrapped_key,
            plaintext_size=result.plaintext_size,
            plaintext_sha256=result.plaintext_sha256,
            ciphertext_size=len(prefix) + result.ciphertext_size,
            ciphertext_sha256=str(good[0].sha256),
            copies=copies,
            algorithm=result.algorithm,
        )

    def _discard(self, object_id: str, stores: Iterable[str]) -> None:
        """Best effort: remove copies a failed write stored (a store may be down).

        Only ever given stores whose ``put`` completed in this write: a store whose ``put``
        raised still holds what it held before, which is not this write's to delete.
        """
        for name in stores:
            try:
                self.stores[name].delete(object_id)
            except StoreUnavailableError as exc:
                log.warning(
                    "vault could not remove a failed copy",
                    extra={
                        "event": "vault_discard_failed",
                        "object_id": object_id,
                        "store": name,
                        "reason": exc.message,
                    },
                )

    # --- reading --------------------------------------------------------------------------

    def read(
        self,
        object_id: str,
        wrapped_key: WrappedKey,
        *,
        plaintext_sha256: str | None = None,
        ciphertext_sha256: str | None = None,
        algorithm: str | None = None,
        on_bad_copy: Callable[[CopyStatus], None] | None = None,
    ) -> ObjectReader:
        """Decrypt an object from the primary, falling back to the replica.

        Any error or mismatch in a copy (missing, unreachable, a failing tag, a hash that
        differs from the catalog's) moves on to the other copy, resuming where the first one
        stopped; the bad copy goes to ``on_bad_copy`` at once and to
        :attr:`ObjectReader.bad_copies`, so the caller can audit it and queue a repair.

        A sealed object (:meth:`write_sealed`) reads the same way: its prefix is checked for
        form and skipped, and ``wrapped_key`` (the catalog's) opens the stream.

        :param plaintext_sha256: the catalog's plaintext hash, checked at the end.
        :param ciphertext_sha256: the catalog's hash of the stored bytes, checked per copy.
        :param algorithm: the digest both hashes are in: the object's, as the catalog records
            it; ``None`` is :attr:`write_suite`'s, right only for an object written in it.
        :raises KeyringError: now, if the wrapping key is not in the keyring.
        :raises CorruptDataError: now, if the wrapped key is another object's or does not
            open; while iterating, if both copies are corrupt.
        :raises StoreUnavailableError: while iterating, if no good copy could be reached.
        :raises NotFoundError: while iterating, if neither store has the object.
        """
        keyring = self._keyring()
        check_object_id(object_id)
        check_wrapped_key(object_id, wrapped_key, keyring)  # a keyring fault is no bad copy
        return self._read(
            object_id,
            keyring,
            wrapped_key,
            plaintext_sha256,
            (ciphertext_sha256, self._digest(algorithm)),
            on_bad_copy,
        )

    def read_sealed(
        self,
        object_id: str,
        *,
        ciphertext_sha256: str | None = None,
        algorithm: str | None = None,
        on_bad_copy: Callable[[CopyStatus], None] | None = None,
    ) -> ObjectReader:
        """Decrypt a sealed object (:meth:`write_sealed`) with the wrapped key it carries.

        Failover is as in :meth:`read`: a copy whose prefix is truncated or tampered with, or
        whose key does not open, is a bad copy and the other one is tried. Failing over
        mid-stream without ``ciphertext_sha256``, the other copy must have the same head
        (sealed prefix and stream header) as the one that failed, else the copies are two
        versions and the read raises rather than splice them.

        :raises KeyringError: while iterating, if the key that wrapped it is not in the
            keyring (retired, or another keyring): that is no bad copy.
        :raises CorruptDataError: while iterating, if both copies are corrupt or not sealed,
            or if the copies hold two versions and the first failed mid-stream.
        :raises StoreUnavailableError: while iterating, if no good copy could be reached.
        :raises NotFoundError: while iterating, if neither store has the object.
        """
        keyring = self._keyring()
        check_object_id(object_id)
        return self._read(
            object_id,
            keyring,
            None,
            None,
            (ciphertext_sha256, self._digest(algorithm)),
            on_bad_copy,
        )

    def _read(
        self,
        object_id: str,
        keyring: Keyring,
        wrapped_key: WrappedKey | None,
        plaintext_sha256: str | None,
        ciphertext: tuple[str | None, DigestName],
        on_bad_copy: Callable[[CopyStatus], None] | None,
    ) -> ObjectReader:
        reader = ObjectReader()
        ciphertext_sha256, algorithm = ciphertext

        def report(store: str, error: DanganError) -> None:
            status = CopyStatus(store, False, error=error)
            reader.bad_copies.append(status)
            log.warning(
                "vault copy bad on read",
                extra={
                    "event": "vault_copy_bad",
                    "object_id": object_id,
                    "store": store,
                    "reason": error.message,
                },
            )
            if on_bad_copy is not None:
                on_bad_copy(status)

        def note_suite(suite: Suite) -> None:
            reader.suite = suite

        def serve() -> Iterator[bytes]:
            served = 0
            head = bytearray()  # the head of the copy that served the pieces so far
            for name in STORES:
                source = _stored_bytes(
                    self.stores[name], name, object_id, ciphertext_sha256, algorithm
                )
                try:
                    stream: Iterator[bytes]
                    if served and ciphertext_sha256 is None:
                        # Resuming mid-stream with no catalog hash to tell versions apart: the
                        # other copy must be the same version (the same head: sealed prefix
                        # and stream header, with its random nonce) or its pieces would be
                        # spliced onto another version's.
                        start = _read_start(source, len(head))
                        if len(start) < len(head):
                            raise CorruptDataError(f"object {object_id} in {name}: truncated")
                        if start[: len(head)] != bytes(head):
                            raise _OtherVersionError(
                                f"object {object_id}: the copy in {name} is another version "
                                "than the one being served; not splicing them"
                            )
                        stream = chain([start], source)
                    else:
                        head.clear()
                        stream = _recording_head(source, head)
                    pieces = open_stored(
                        object_id,
                        stream,
                        keyring,
                        wrapped_key=wrapped_key,
                        plaintext_sha256=plaintext_sha256,
                        on_suite=note_suite,
                    )
                    reader.served_from = name
                    skip = served  # the pieces this copy repeats of the one before
                    for piece in pieces:
                        if skip:
                            skip -= 1
                            continue
                        served += 1
                        yield piece
                    return
                except _OtherVersionError:
                    reader.served_from = None
                    raise
                except _COPY_ERRORS as exc:
                    reader.served_from = None
                    report(name, exc)
                finally:
                    source.close()
            raise _no_good_copy(object_id, reader.bad_copies)

        reader._pieces = serve()
        return reader

    # --- checking and repairing -----------------------------------------------------------

    def verify_copy(
        self,
        store: str,
        object_id: str,
        *,
        size: int,
        ciphertext_sha256: str,
        wrapped_key: WrappedKey | None = None,
        plaintext_sha256: str | None = None,
        algorithm: str | None = None,
    ) -> CopyStatus:
        """Check one copy against the catalog: size and ciphertext digest, keyless.

        ``algorithm`` is the digest the catalog's hashes are in (the object's; ``None``:
        :attr:`write_suite`'s).

        Given ``wrapped_key`` (deep check), it also decrypts the copy in the same pass and
        checks every tag and the plaintext hash. A missing or corrupt copy is a finding,
        returned; an unreachable store is not, and raises.

        :raises StoreUnavailableError: the store cannot be reached.
        :raises KeyringError: a deep check without a usable keyring.
        """
        backend = self._store(store)
        keyring = None
        if wrapped_key is not None:
            keyring = self._keyring()
            check_wrapped_key(object_id, wrapped_key, keyring)  # a keyring fault is no finding
        try:
            stated = backend.stat(object_id).size
            if stated != size:
                raise CorruptDataError(
                    f"object {object_id} in {store}: {stated} bytes, {size} expected"
                )
            source = _stored_bytes(
                backend, store, object_id, ciphertext_sha256, self._digest(algorithm)
            )
            try:
                pieces: Iterator[bytes] = source
                if wrapped_key is not None and keyring is not None:
                    pieces = open_stored(
                        object_id,
                        source,
                        keyring,
                        wrapped_key=wrapped_key,
                        plaintext_sha256=plaintext_sha256,
                    )
                # Drop each piece before the next is read: a 1 MiB buffer that is reused
                # stays in the CPU cache, which keeps a check near the speed of SHA-256.
                deque(pieces, maxlen=0)
            finally:
                source.close()
        except (CorruptDataError, NotFoundError) as exc:
            return CopyStatus(store, False, error=exc)
        return CopyStatus(store, True, size, ciphertext_sha256)

    def repair_copy(
        self,
        object_id: str,
        from_store: str,
        to_store: str,
        expected_sha256: str,
        *,
        algorithm: str | None = None,
    ) -> CopyStatus:
        """Replace the copy in ``to_store`` with the one in ``from_store``, keylessly.

        The source is hashed (with ``algorithm``, the object's digest) as it streams and must
        match ``expected_sha256`` (the catalog's) before the new copy is put in place; the new
        copy is then read back.

        :raises CorruptDataError: the source copy is bad too; ``to_store`` is left as it was.
        :raises NotFoundError: the source copy is missing.
        :raises StoreUnavailableError: either store cannot be reached.
        """
        source_backend, target = self._store(from_store), self._store(to_store)
        if from_store == to_store:
            raise ValueError("a copy is repaired from the other store")
        digest = self._digest(algorithm)
        source = _stored_bytes(source_backend, from_store, object_id, expected_sha256, digest)
        try:
            stored = target.put(object_id, source, algorithm=digest)
        finally:
            source.close()
        check_copy(target, to_store, object_id, stored)
        log.info(
            "vault copy repaired",
            extra={
                "event": "vault_repair",
                "object_id": object_id,
                "store": to_store,
                "source": from_store,
            },
        )
        return CopyStatus(to_store, True, stored.size, stored.sha256)

    def delete_object(self, object_id: str) -> None:
        """Remove both copies (the catalog destroys the wrapped key: crypto-shredding).

        Deleting what is already gone is not an error, so a retried job is harmless.

        :raises StoreUnavailableError: a store could not be reached (after trying both).
        """
        check_object_id(object_id)
        failed = []
        for name in STORES:
            try:
                self.stores[name].delete(object_id)
            except StoreUnavailableError as exc:
                failed.append(f"{name}: {exc.message}")
        if failed:
            raise StoreUnavailableError(
                f"object {object_id} not deleted everywhere ({'; '.join(failed)})"
            )
        log.info("vault object deleted", extra={"event": "vault_delete", "object_id": object_id})


class _OtherVersionError(CorruptDataError):
    """The copies hold two versions of an object, and a read cannot go on from one to the
    other; neither copy is known to be bad."""


def _recording_head(source: Iterator[bytes], head: bytearray) -> Iterator[bytes]:
    """``source`` unchanged, keeping its head (:func:`vault.sealed.stored_head_size`) in
    ``head``."""
    size: int | None = None
    for chunk in source:
        if size is None or len(head) < size:
            head.extend(chunk)
            size = stored_head_size(head)
            if size is not None:
                del head[size:]
        yield chunk


def _read_start(source: Iterator[bytes], n: int) -> bytes:
    """At least the first ``n`` bytes of ``source`` (fewer only if it ends before)."""
    start = bytearray()
    for chunk in source:
        start.extend(chunk)
        if len(start) >= n:
            break
    return bytes(start)


def _stored_bytes(
    backend: Backend,
    store: str,
    object_id: str,
    expected_sha256: str | None,
    algorithm: DigestName = "sha256",
) -> Generator[bytes, None, None]:
    """One copy's bytes; with ``expected_sha256``, hashed (``algorithm``) as they pass, and a
    differing hash
    raises at the end, before the consumer sees the stream end. The store is opened at the
    first ``next`` and released on ``close()``."""
    tally = Tally(algorithm) if expected_sha256 is not None else None
    with backend.open(object_id) as stream:
        for chunk in stream:
            if tally is not None:
                tally.update(chunk)
            yield chunk
            del chunk  # free it before the next read (see verify_copy)
    if expected_sha256 is None or tally is None:
        return
    if not hmac.compare_digest(tally.result().sha256, expected_sha256):
        raise CorruptDataError(
            f"object {object_id} in {store}: the ciphertext {_NAMES[algorithm]} differs from "
            "the catalog's"
        )


def _no_good_copy(object_id: str, bad: list[CopyStatus]) -> DanganError:
    """The error for "no copy holds up": unreachable beats corrupt beats missing, because an
    unreachable store may come back and a retry may then succeed."""
    reasons = "; ".join(f"{c.store}: {c.reason}" for c in bad)
    message = f"object {object_id}: no good copy ({reasons})"
    kinds = {type(c.error) for c in bad}
    if StoreUnavailableError in kinds:
        return StoreUnavailableError(message)
    if CorruptDataError in kinds:
        return CorruptDataError(message)
    return NotFoundError(message)
