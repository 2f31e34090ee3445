"""The cipher suites an object may be written in, and the digests the vault checks with.

An object records its suite in its header's suite byte (``docs/vault-format.md``, "Cipher
suites"): the segments' AEAD (AES-256-GCM or SM4-GCM, GB/T 32907) and the digest sealed in
its trailer, which is also the digest of its stored bytes (SHA-256 or SM3, GB/T 32905). A
reader takes the suite from the header, so an archive can change its choice for new objects
and still read every old one. Both digests are 32 bytes and both AEADs use a 12-byte nonce
and a 16-byte tag, so every suite has the same sizes.

This module only names and builds primitives: it never holds a key longer than the object
that was given it, and never shows one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dangan.errors import CorruptDataError, DependencyMissingError, InvalidInputError

__all__ = [
    "CIPHERS",
    "DEFAULT_SUITE",
    "DIGESTS",
    "SUITES",
    "CipherName",
    "DigestName",
    "Hasher",
    "Suite",
    "check_digest",
    "new_hash",
    "suite_for",
]

DigestName = Literal["sha256", "sm3"]
"""A digest, by its ``hashlib`` name: SHA-256 (FIPS 180-4) or SM3 (GB/T 32905-2016)."""
CipherName = Literal["aes-256-gcm", "sm4-gcm"]
"""A content cipher: AES-256-GCM (NIST SP 800-38D) or SM4-GCM (GB/T 32907-2016, RFC 8998)."""

DIGESTS: Final[tuple[DigestName, ...]] = get_args(DigestName)
CIPHERS: Final[tuple[CipherName, ...]] = get_args(CipherName)
_TAG_SIZE = 16


class Hasher(Protocol):
    """What ``hashlib`` hands out: the part of it the vault uses."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def check_digest(name: str) -> DigestName:
    """``name`` if it is a digest the vault knows.

    :raises InvalidInputError: any other name.
    """
    if name not in DIGESTS:
        raise InvalidInputError(f"unknown digest {name!r}; the vault knows {', '.join(DIGESTS)}")
    return name


def new_hash(name: str) -> Hasher:
    """A fresh hash object for the digest ``name``.

    :raises InvalidInputError: an unknown digest.
    :raises DependencyMissingError: this Python's OpenSSL has no SM3.
    """
    try:
        return hashlib.new(check_digest(name))
    except ValueError:
        raise DependencyMissingError(
            f"this Python's OpenSSL does not provide {name}; install OpenSSL 1.1.1 or newer"
        ) from None


class Aead(Protocol):
    """Seal and open one segment: ``encrypt`` returns ciphertext ‖ 16-byte tag."""

    def encrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes:
        """:raises cryptography.exceptions.InvalidTag: the tag does not match."""
        ...


class _Sm4Gcm:
    """SM4 in GCM mode with the ``AESGCM`` calling convention (``cryptography`` has no AEAD
    class for it). The plaintext of :meth:`decrypt` is returned only once the tag checks."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = algorithms.SM4(key)

    def __repr__(self) -> str:
        return "Sm4Gcm(<hidden>)"

    def encrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes:
        encryptor = Cipher(self._key, modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(associated_data)
        sealed = encryptor.update(data) + encryptor.finalize()
        return sealed + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes | memoryview, associated_data: bytes) -> bytes:
        if len(data) < _TAG_SIZE:
            raise InvalidTag
        view = memoryview(data)
        body, tag = view[:-_TAG_SIZE], bytes(view[-_TAG_SIZE:])
        decryptor = Cipher(self._key, modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(associated_data)
        plain = decryptor.update(body)
        return plain + decryptor.finalize()  # InvalidTag here: nothing is returned


@dataclass(frozen=True)
class Suite:
    """One cipher suite: its id in the object header, its AEAD and its digest."""

    id: int
    cipher: CipherName
    digest: DigestName

    @property
    def key_size(self) -> int:
        """Bytes of data key: 32 for AES-256, 16 for SM4 (a 128-bit block cipher)."""
        return 32 if self.cipher == "aes-256-gcm" else 16

    def aead(self, key: bytes) -> Aead:
        """The AEAD of this suite under ``key``.

        :raises CorruptDataError: ``key`` is not :attr:`key_size` bytes (a data key that does
            not belong to an object of this suite).
        """
        if len(key) != self.key_size:
            raise CorruptDataError(f"a data key of {len(key)} bytes cannot open suite {self.id}")
        if self.cipher == "aes-256-gcm":
            return AESGCM(key)
        return _Sm4Gcm(key)

    def new_hash(self) -> Hasher:
        return new_hash(self.digest)


# docs/vault-format.md, "Cipher suites". Ids are never reused or renumbered.
SUITES: Final[dict[int, Suite]] = {
    1: Suite(1, "aes-256-gcm", "sha256"),
    2: Suite(2, "sm4-gcm", "sm3"),
    3: Suite(3, "sm4-gcm", "sha256"),
    4: Suite(4, "aes-256-gcm", "sm3"),
}
DEFAULT_SUITE: Final = SUITES[1]


def suite_for(cipher: str, digest: str) -> Suite:
    """The suite of a cipher and a digest, as the settings name them.

    :raises InvalidInputError: an unknown cipher or digest.
    """
    check_digest(digest)
    for suite in SUITES.values():
        if (suite.cipher, suite.digest) == (cipher, digest):
            return suite
    raise InvalidInputError(f"unknown cipher {cipher!r}; the vault knows {', '.join(CIPHERS)}")
