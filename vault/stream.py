"""Streaming envelope encryption: one object's bytes in, sealed segments out, and back.

Each object gets a fresh 256-bit data key. The data key is wrapped (AES-256-GCM) by the
keyring's current key and handed back to the caller to keep in the catalog; it is never part
of the stream this module makes, so re-wrapping under a new keyring key (:func:`rewrap`) never
touches content, and destroying the wrapped key makes every copy unreadable (crypto-shredding).
Only a sealed object (``vault.sealed``) puts a copy of it in front of the stream. The content is
sealed as AES-256-GCM segments with a STREAM nonce (random prefix ‖ counter ‖ last flag) and
the header plus the object id as associated data, and ends with a sealed trailer holding the
plaintext's digest. The AEAD and the digest are the object's cipher suite (``vault.suites``:
AES-256-GCM or SM4-GCM, SHA-256 or SM3), recorded in the header, so a reader needs no setting
to open any object. The byte format is ``docs/vault-format.md``; every layout decision below
points to its section there.

Both directions are iterators over segments, so memory stays flat for any size. This module
must never write anything anywhere (it only transforms iterators), never log or repr a key,
and never hand out a decrypted byte whose segment failed authentication.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag

from dangan.errors import CorruptDataError, InvalidInputError
from vault.ids import check_object_id
from vault.keyring import Keyring
from vault.suites import DEFAULT_SUITE, SUITES, Aead, DigestName, Suite

__all__ = [
    "CHUNK",
    "EncryptedObject",
    "Encryption",
    "WrappedKey",
    "check_wrapped_key",
    "ciphertext_size",
    "decrypt",
    "default_suite",
    "encrypt",
    "rewrap",
]

CHUNK = 1 << 20
"""Plaintext bytes per segment, and the unit in which dangan moves bytes everywhere."""

# docs/vault-format.md, "Object header"
MAGIC = b"DANGAN"
VERSION = 1
SUITE_AES256GCM_STREAM_SHA256 = 1  # the others: vault.suites.SUITES, "Cipher suites"
_HEADER = struct.Struct(">6sBBI7s")
HEADER_SIZE = _HEADER.size  # 19
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
DIGEST_SIZE = 32
TRAILER_SIZE = DIGEST_SIZE + TAG_SIZE  # docs/vault-format.md, "Trailer"
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 1 << 24
_LAST_COUNTER = 0xFFFFFFFF  # the counter is 32 bits; the trailer may use the last value
_DATA, _FINAL = b"\x00", b"\x01"  # docs/vault-format.md, "Segment nonce"

# docs/vault-format.md, "Wrapped data key"
DATA_KEY_SIZE = 32  # AES-256; an SM4 object's data key has 16 bytes (Suite.key_size)
_DATA_KEY_SIZES = (16, 32)
WRAP_VERSION = 1
WRAP_NONCE_SIZE = 12
_WRAP_DOMAIN = b"DANGAN-WRAP"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class _DataKey:
    """One object's content key (256 bits for AES, 128 for SM4). It lives only in memory and
    never shows itself."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        self._material = bytes(material)

    def aead(self, suite: Suite) -> Aead:
        """The suite's AEAD under this key.

        :raises CorruptDataError: the key's size is not the suite's.
        """
        return suite.aead(self._material)

    def __repr__(self) -> str:
        return "DataKey(<hidden>)"

    def __reduce__(self) -> Any:
        raise TypeError("data keys are not picklable")


@dataclass(frozen=True, repr=False)
class WrappedKey:
    """An object's data key sealed under one keyring key, bound to the object's id.

    The catalog keeps it (:meth:`to_bytes` / :meth:`from_bytes`); destroying it shreds the
    object. It is not secret without the keyring, but it is the only way to the content.
    """

    object_id: str
    key_id: str
    nonce: bytes
    sealed: bytes

    def _prefix(self) -> bytes:
        # docs/vault-format.md, "Wrapped data key": everything before the nonce.
        kid = self.key_id.encode("ascii")
        oid = self.object_id.encode("ascii")
        return bytes([WRAP_VERSION, len(kid)]) + kid + bytes([len(oid)]) + oid

    def _associated_data(self) -> bytes:
        return _WRAP_DOMAIN + self._prefix()

    def to_bytes(self) -> bytes:
        """The wrapped key as stored by the catalog (``docs/vault-format.md``)."""
        return self._prefix() + self.nonce + self.sealed

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        """Parse :meth:`to_bytes` output.

        :raises CorruptDataError: malformed bytes.
        """
        try:
            if data[0] != WRAP_VERSION:
                raise CorruptDataError("unsupported wrapped data key version")
            n = data[1]
            key_id = data[2 : 2 + n].decode("ascii")
            m = data[2 + n]
            object_id = data[3 + n : 3 + n + m].decode("ascii")
            rest = data[3 + n + m :]
        except (IndexError, UnicodeDecodeError):
            raise CorruptDataError("malformed wrapped data key") from None
        if len(key_id) != n or len(object_id) != m:
            raise CorruptDataError("malformed wrapped data key")
        if len(rest) not in (WRAP_NONCE_SIZE + n + TAG_SIZE for n in _DATA_KEY_SIZES):
            raise CorruptDataError("malformed wrapped data key")
        return cls(object_id, key_id, bytes(rest[:WRAP_NONCE_SIZE]), bytes(rest[WRAP_NONCE_SIZE:]))

    @classmethod
    def from_base64(cls, text: str, object_id: str) -> WrappedKey:
        """Parse base64 of :meth:`to_bytes`, as manifests and sidecars carry it.

        :param object_id: the object the key must belong to.
        :raises CorruptDataError: malformed, or the key names another object.
        """
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise CorruptDataError(f"object {object_id}: malformed wrapped key") from None
        wrapped = cls.from_bytes(raw)
        if wrapped.object_id != object_id:
            raise CorruptDataError(f"object {object_id}: the wrapped key is another's")
        return wrapped

    def __repr__(self) -> str:
        return f"WrappedKey(object_id={self.object_id!r}, key_id={self.key_id!r})"


def _wrap(object_id: str, material: bytes, keyring: Keyring) -> WrappedKey:
    kek = keyring.current
    unsealed = WrappedKey(object_id, kek.id, secrets.token_bytes(WRAP_NONCE_SIZE), b"")
    sealed = kek.seal(unsealed.nonce, material, unsealed._associated_data())
    return WrappedKey(object_id, kek.id, unsealed.nonce, sealed)


def _unwrap_material(wrapped: WrappedKey, keyring: Keyring) -> bytes:
    kek = keyring.get(wrapped.key_id)  # KeyringError: retired or wrong keyring
    try:
        material = kek.open(wrapped.nonce, wrapped.sealed, wrapped._associated_data())
    except CorruptDataError:
        raise CorruptDataError(
            f"the wrapped data key of object {wrapped.object_id} does not open "
            f"with keyring key {wrapped.key_id}"
        ) from None
    if len(material) not in _DATA_KEY_SIZES:
        raise CorruptDataError(f"the data key of object {wrapped.object_id} has a wrong size")
    return material


def _unwrap(object_id: str, wrapped: WrappedKey, keyring: Keyring) -> _DataKey:
    if wrapped.object_id != object_id:
        raise CorruptDataError(f"the wrapped data key given for object {object_id} is another's")
    return _DataKey(_unwrap_material(wrapped, keyring))


def check_wrapped_key(object_id: str, wrapped: WrappedKey, keyring: Keyring) -> None:
    """Raise now if ``wrapped`` is not ``object_id``'s or does not open with ``keyring``.

    For callers that must tell a keyring problem from a bad copy before reading any store.

    :raises KeyringError: the key that wrapped it is not in the keyring.
    :raises CorruptDataError: it belongs to another object or does not open.
    """
    _unwrap(check_object_id(object_id), wrapped, keyring)


def rewrap(wrapped: WrappedKey, keyring: Keyring) -> WrappedKey:
    """The same data key, wrapped by the keyring's current key; content is not touched.

    Returns ``wrapped`` itself when it is already under the current key, so a re-wrap job
    can run again safely.

    :raises KeyringError: the key that wrapped it is not in the keyring.
    :raises CorruptDataError: the wrapped key does not open.
    """
    if wrapped.key_id == keyring.current.id:
        return wrapped
    return _wrap(wrapped.object_id, _unwrap_material(wrapped, keyring), keyring)


def ciphertext_size(plaintext_size: int, segment_size: int = CHUNK) -> int:
    """The stored size of an object of ``plaintext_size`` bytes (``docs/vault-format.md``)."""
    full, rest = divmod(plaintext_size, segment_size)
    return (
        HEADER_SIZE
        + full * (segment_size + TAG_SIZE)
        + (rest + TAG_SIZE if rest else 0)
        + (TRAILER_SIZE)
    )


def _nonce(prefix: bytes, counter: int, flag: bytes) -> bytes:
    # docs/vault-format.md, "Segment nonce": prefix(7) ‖ counter(4, big-endian) ‖ flag(1).
    return prefix + counter.to_bytes(4, "big") + flag


@dataclass(frozen=True)
class EncryptedObject:
    """What :class:`Encryption` produced, known once it is exhausted."""

    object_id: str
    wrapped_key: WrappedKey
    plaintext_size: int
    plaintext_sha256: str
    ciphertext_size: int
    algorithm: DigestName = "sha256"
    """The digest of ``plaintext_sha256`` (and of the stored bytes): the suite's."""


class Encryption(Iterator[bytes]):
    """The ciphertext of one object, piece by piece: the header, each segment, the trailer.

    Iterate it to the end (feeding the pieces to a backend), then read :attr:`result`.
    :attr:`wrapped_key` is known from the start. Nothing is buffered beyond one segment.
    """

    def __init__(
        self,
        object_id: str,
        chunks: Iterable[bytes],
        keyring: Keyring,
        segment_size: int,
        suite: Suite,
    ) -> None:
        self.object_id = check_object_id(object_id)
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise InvalidInputError(
                f"segment size must lie between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}"
            )
        self.suite = suite
        material = secrets.token_bytes(suite.key_size)
        self._key = _DataKey(material)
        self.wrapped_key = _wrap(object_id, material, keyring)
        del material
        self._segment_size = segment_size
        self._result: EncryptedObject | None = None
        self._pieces = self._run(iter(chunks))

    @property
    def result(self) -> EncryptedObject:
        """Sizes and the plaintext hash.

        :raises RuntimeError: the iteration has not finished.
        """
        if self._result is None:
            raise RuntimeError("the encryption has not been iterated to its end")
        return self._result

    def __next__(self) -> bytes:
        return next(self._pieces)

    def close(self) -> None:
        """Stop early; no result will be available."""
        self._pieces.close()

    def _run(self, chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
        size = self._segment_size
        aead = self._key.aead(self.suite)
        prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
        header = _HEADER.pack(MAGIC, VERSION, self.suite.id, size, prefix)
        ad = header + self.object_id.encode("ascii")  # docs/vault-format.md, "Associated data"
        digest = self.suite.new_hash()
        counter = 0
        plain_total = 0
        out_total = len(header)
        yield header

        buf = bytearray()
        for chunk in chunks:
            buf += chunk
            if len(buf) < size:
                continue
            taken = 0
            with memoryview(buf) as view:
                while len(buf) - taken >= size:
                    if counter >= _LAST_COUNTER:
                        raise InvalidInputError("object too large for its segment size")
                    with view[taken : taken + size] as segment:
                        sealed = aead.encrypt(_nonce(prefix, counter, _DATA), segment, ad)
                        digest.update(segment)
                    counter += 1
                    taken += size
                    out_total += len(sealed)
                    yield sealed
            del buf[:taken]
            plain_total += taken
        if buf:  # the one short data segment, never empty (docs/vault-format.md, "Segments")
            sealed = aead.encrypt(_nonce(prefix, counter, _DATA), bytes(buf), ad)
            digest.update(buf)
            counter += 1
            plain_total += len(buf)
            out_total += len(sealed)
            yield sealed
        trailer = aead.encrypt(_nonce(prefix, counter, _FINAL), digest.digest(), ad)
        out_total += len(trailer)
        self._result = EncryptedObject(
            object_id=self.object_id,
            wrapped_key=self.wrapped_key,
            plaintext_size=plain_total,
            plaintext_sha256=digest.hexdigest(),
            ciphertext_size=out_total,
            algorithm=self.suite.digest,
        )
        yield trailer


def default_suite() -> Suite:
    """The suite :func:`encrypt` uses when given none: AES-256-GCM with SHA-256 (suite 1)."""
    return DEFAULT_SUITE


def encrypt(
    object_id: str,
    chunks: Iterable[bytes],
    keyring: Keyring,
    *,
    segment_size: int = CHUNK,
    suite: Suite | None = None,
) -> Encryption:
    """Encrypt a stream of plaintext chunks (any sizes) as object ``object_id``.

    :param segment_size: plaintext bytes per segment; recorded in the header. Only tests
        should change it.
    :param suite: the cipher and digest (``vault.suites``); ``None`` is this module's
        :data:`DEFAULT_SUITE` (AES-256-GCM with SHA-256).
    :raises InvalidInputError: a malformed object id or segment size.
    :raises KeyringError: the keyring has no usable current key.
    """
    return Encryption(
        object_id, chunks, keyring, segment_size, default_suite() if suite is None else suite
    )


def decrypt(
    object_id: str,
    wrapped_key: WrappedKey,
    chunks: Iterable[bytes],
    keyring: Keyring,
    *,
    plaintext_sha256: str | None = None,
    on_suite: Callable[[Suite], None] | None = None,
) -> Iterator[bytes]:
    """Decrypt a stored object, yielding its plaintext segment by segment.

    The data key is unwrapped now, so keyring problems raise before any byte is read. While
    iterating, a segment that fails authentication, a truncated, extended or reordered stream,
    or a plaintext hash that differs from the trailer's (or from ``plaintext_sha256``) raises
    :class:`CorruptDataError`. The last segment is held back until the trailer and the hashes
    check, so a consumer that stops at the exception never holds a complete-looking file;
    still, **a consumer must treat any exception as "discard everything received"**.

    :param chunks: the stored bytes in any chunking; the caller closes its source.
    :param plaintext_sha256: the hex digest the catalog expects, checked as well, in the
        digest of the object's suite (SHA-256 or SM3, as its header says).
    :param on_suite: called with the object's suite once its header is read (before any
        segment is authenticated: it says what the object claims, not that it holds up).
    :raises KeyringError: the wrapping key is not in the keyring.
    :raises CorruptDataError: the wrapped key does not open or belongs to another object.
    """
    check_object_id(object_id)
    if plaintext_sha256 is not None and not _HEX64.fullmatch(plaintext_sha256):
        raise InvalidInputError("plaintext_sha256 must be 64 lowercase hex digits")  # SM3 too
    key = _unwrap(object_id, wrapped_key, keyring)
    return _open_segments(object_id, key, iter(chunks), plaintext_sha256, on_suite)


def _open_segments(
    object_id: str,
    key: _DataKey,
    chunks: Iterator[bytes],
    expected: str | None,
    on_suite: Callable[[Suite], None] | None,
) -> Iterator[bytes]:
    buf = bytearray()
    at_end = False

    def fill(n: int) -> None:
        nonlocal at_end
        while len(buf) < n and not at_end:
            try:
                buf.extend(next(chunks))
            except StopIteration:
                at_end = True

    def corrupt(what: str) -> CorruptDataError:
        return CorruptDataError(f"object {object_id}: {what}")

    fill(HEADER_SIZE)
    if len(buf) < HEADER_SIZE:
        raise corrupt("truncated header")
    header = bytes(buf[:HEADER_SIZE])
    del buf[:HEADER_SIZE]
    magic, version, suite, size, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise corrupt("not a dangan vault object")
    if version != VERSION or suite not in SUITES:
        raise corrupt("unsupported format version or cipher suite")
    if not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE:
        raise corrupt("implausible segment size")
    try:
        aead = key.aead(SUITES[suite])
    except CorruptDataError:
        raise corrupt("the data key does not fit the object's cipher suite") from None
    if on_suite is not None:
        on_suite(SUITES[suite])
    ad = header + object_id.encode("ascii")
    digest = SUITES[suite].new_hash()
    sealed_size = size + TAG_SIZE
    counter = 0
    held: bytes | None = None

    while True:
        # docs/vault-format.md, "Reading": a full segment if at least a full segment and a
        # trailer remain; else what remains is one short segment and the trailer.
        fill(sealed_size + TRAILER_SIZE)
        remaining = len(buf)
        if remaining >= sealed_size + TRAILER_SIZE:
            length = sealed_size
        elif remaining == TRAILER_SIZE:
            break
        elif remaining > TRAILER_SIZE + TAG_SIZE:
            length = remaining - TRAILER_SIZE
        else:
            raise corrupt("truncated or malformed segment stream")
        if counter >= _LAST_COUNTER:
            raise corrupt("too many segments")
        try:
            with memoryview(buf) as view:
                plain = aead.decrypt(_nonce(prefix, counter, _DATA), view[:length], ad)
        except InvalidTag:
            raise corrupt(f"segment {counter} failed authentication") from None
        del buf[:length]
        digest.update(plain)
        counter += 1
        if held is not None:
            yield held
        held = plain

    try:
        recorded = aead.decrypt(_nonce(prefix, counter, _FINAL), bytes(buf), ad)
    except InvalidTag:
        raise corrupt("the trailer failed authentication (truncated or extended)") from None
    if not hmac.compare_digest(recorded, digest.digest()):
        raise corrupt("the plaintext digest differs from the one sealed in the trailer")
    if expected is not None and not hmac.compare_digest(expected, digest.hexdigest()):
        raise corrupt("the plaintext digest differs from the one expected")
    if held is not None:
        yield held
