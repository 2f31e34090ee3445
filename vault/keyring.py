"""The keyring: the key-encryption keys (KEKs) that wrap every object's data key, and the
instance's signing key.

A keyring holds one or more 256-bit KEKs, each with an id, and names one of them current:
new data keys are wrapped by the current key, older wrapped keys name the key that wrapped
them. It lives outside the data it protects: a file of mode 0600 or the ``DANGAN_KEYRING``
environment variable (the same file, base64-encoded). The file format is written down in
``docs/vault-format.md`` (section "Keyring file").

Beside the KEKs a keyring may hold one Ed25519 signing key (:class:`SigningKey`): it signs
what this instance attests, such as destruction certificates. A keyring written before it
existed has none; :meth:`Keyring.add_signing_key` makes one on first need.

This module must never log, print, ``repr`` or put into an exception message any key
material; it never writes a keyring anywhere but the path it is given, and never with a mode
wider than 0600.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from dangan.errors import CorruptDataError, KeyringError

__all__ = [
    "KeyEncryptionKey",
    "Keyring",
    "SigningKey",
    "create_keyring_file",
    "keyring_from_b64",
    "load_keyring",
    "signing_key_id",
]

log = logging.getLogger(__name__)

KEY_SIZE = 32  # AES-256
FORMAT_NAME = "dangan-keyring"  # docs/vault-format.md, "Keyring file"
FORMAT_VERSION = 1
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class KeyEncryptionKey:
    """One 256-bit key of the keyring. It seals and opens data keys; it never shows itself.

    :param key_id: ASCII ``[A-Za-z0-9._-]``, 1 to 64 characters; recorded in every key it wraps.
    """

    __slots__ = ("_aead", "_material", "created_at", "id")

    def __init__(self, key_id: str, material: bytes, created_at: dt.datetime) -> None:
        if not _KEY_ID.fullmatch(key_id):
            raise KeyringError("a keyring key id must be 1-64 characters of [A-Za-z0-9._-]")
        if len(material) != KEY_SIZE:
            raise KeyringError(f"keyring key {key_id} is not {KEY_SIZE} bytes long")
        self.id = key_id
        self.created_at = created_at
        self._material = bytes(material)
        self._aead = AESGCM(self._material)

    @classmethod
    def generate(cls) -> KeyEncryptionKey:
        """A fresh random key with a fresh id (``k`` + creation date + 8 random hex digits)."""
        now = _utcnow()
        key_id = f"k{now:%Y%m%d}-{secrets.token_hex(4)}"
        return cls(key_id, secrets.token_bytes(KEY_SIZE), now)

    def seal(self, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """AES-256-GCM encrypt ``plaintext``; returns ciphertext ‖ 16-byte tag."""
        return self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
        """Reverse :meth:`seal`.

        :raises CorruptDataError: the tag does not match (wrong key, or altered bytes).
        """
        try:
            return self._aead.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            raise CorruptDataError(
                f"data sealed under keyring key {self.id} does not open"
            ) from None

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(id={self.id!r}, material=<hidden>)"

    def __reduce__(self) -> Any:
        raise TypeError("key-encryption keys are not picklable")


SIGNING_KEY_SIZE = 32  # an Ed25519 private key (its seed), RFC 8032


def signing_key_id(public_key: bytes) -> str:
    """The id of a signing key: ``s`` + the first 16 hex digits of SHA-256(raw public key).

    Derived from the public key, so a verifier holding only the public key names it the same
    way (docs/vault-format.md, "Keyring file").
    """
    return "s" + hashlib.sha256(public_key).hexdigest()[:16]


class SigningKey:
    """The instance's Ed25519 key: it signs, and shows its public half; never its private one."""

    __slots__ = ("_private", "created_at", "id", "public_key")

    def __init__(self, material: bytes, created_at: dt.datetime) -> None:
        if len(material) != SIGNING_KEY_SIZE:
            raise KeyringError(f"the signing key is not {SIGNING_KEY_SIZE} bytes long")
        self._private = Ed25519PrivateKey.from_private_bytes(bytes(material))
        #: The raw 32-byte public key, which anyone may hold to verify signatures.
        self.public_key = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = signing_key_id(self.public_key)
        self.created_at = created_at

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.token_bytes(SIGNING_KEY_SIZE), _utcnow())

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def _material(self) -> bytes:
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def __repr__(self) -> str:
        return f"SigningKey(id={self.id!r}, material=<hidden>)"

    def __reduce__(self) -> Any:
        raise TypeError("signing keys are not picklable")


class Keyring:
    """The keys that may have wrapped a data key, the one that wraps new ones, and the
    instance's signing key if it has one yet.

    :param keys: every key still in use, any order; ids must be unique.
    :param current_id: the id among them that wraps new data keys.
    :param signing_key: the Ed25519 key this instance signs with; ``None`` until first needed.
    :raises KeyringError: duplicate ids, no keys, or ``current_id`` not among them.
    """

    def __init__(
        self,
        keys: Iterable[KeyEncryptionKey],
        current_id: str,
        signing_key: SigningKey | None = None,
    ) -> None:
        self.signing_key = signing_key
        self._keys: dict[str, KeyEncryptionKey] = {}
        for key in keys:
            if key.id in self._keys:
                raise KeyringError(f"keyring key id {key.id} appears twice")
            self._keys[key.id] = key
        if current_id not in self._keys:
            raise KeyringError(f"the current keyring key {current_id} is not in the keyring")
        self._current_id = current_id

    @classmethod
    def generate(cls) -> Keyring:
        """A new keyring holding one fresh key, which is current."""
        key = KeyEncryptionKey.generate()
        return cls([key], key.id)

    @property
    def current(self) -> KeyEncryptionKey:
        """The key new data keys are wrapped with."""
        return self._keys[self._current_id]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id held, oldest first by creation time."""
        return tuple(k.id for k in sorted(self._keys.values(), key=lambda k: k.created_at))

    def get(self, key_id: str) -> KeyEncryptionKey:
        """The key named ``key_id``.

        :raises KeyringError: no such key (retired, or this is the wrong keyring).
        """
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyringError(f"keyring key {key_id} is not in the keyring") from None

    def rotate(self) -> KeyEncryptionKey:
        """Add a fresh key and make it current; the old keys stay for unwrapping.

        Only in memory: call :meth:`save` to persist it, then re-wrap data keys with
        :func:`vault.rewrap`.
        """
        key = KeyEncryptionKey.generate()
        while key.id in self._keys:  # the same day and the same 32 random bits: draw again
            key = KeyEncryptionKey.generate()
        self._keys[key.id] = key
        self._current_id = key.id
        log.info("keyring rotated", extra={"event": "keyring_rotated", "key_id": key.id})
        return key

    def add_signing_key(self) -> SigningKey:
        """The signing key, made now if the keyring has none (an older keyring file).

        Only in memory: call :meth:`save` to persist it. An existing signing key is never
        replaced: what it signed must stay verifiable.
        """
        if self.signing_key is None:
            self.signing_key = SigningKey.generate()
            log.info(
                "signing key created",
                extra={"event": "keyring_signing_key_created", "key_id": self.signing_key.id},
            )
        return self.signing_key

    def retire(self, key_id: str, *, objects_using: int) -> None:
        """Drop a key that no wrapped data key names any more.

        The keyring cannot see the catalog, so the caller counts the wrapped keys that still
        name ``key_id`` and passes the count; anything but 0 is refused.

        :raises KeyringError: the key is current, unknown, or still in use.
        """
        self.get(key_id)
        if key_id == self._current_id:
            raise KeyringError(f"keyring key {key_id} is current and cannot be retired")
        if objects_using != 0:
            raise KeyringError(
                f"keyring key {key_id} still wraps {objects_using} data key(s); re-wrap them first"
            )
        del self._keys[key_id]
        log.info("keyring key retired", extra={"event": "keyring_retired", "key_id": key_id})

    def save(self, path: Path) -> None:
        """Write the keyring to ``path`` atomically with mode 0600, replacing what is there.

        :raises KeyringError: the file cannot be written.
        """
        data = self._to_json().encode("utf-8")
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise KeyringError(f"cannot write the keyring file {path}: {exc.strerror}") from exc

    def _to_json(self) -> str:
        keys = [
            {
                "id": k.id,
                "created": _stamp(k.created_at),
                "key": base64.b64encode(k._material).decode("ascii"),
            }
            for k in sorted(self._keys.values(), key=lambda k: k.created_at)
        ]
        doc: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "current": self._current_id,
            "keys": keys,
        }
        if self.signing_key is not None:
            # Optional, so that a keyring without it (older files) reads the same.
            doc["signing_key"] = {
                "id": self.signing_key.id,
                "created": _stamp(self.signing_key.created_at),
                "key": base64.b64encode(self.signing_key._material()).decode("ascii"),
            }
        return json.dumps(doc, indent=2) + "\n"

    def __repr__(self) -> str:
        return f"Keyring(current={self._current_id!r}, keys={list(self.key_ids)!r})"

    def __reduce__(self) -> Any:
        raise TypeError("keyrings are not picklable")


def create_keyring_file(path: Path) -> Keyring:
    """Create a new keyring file holding one fresh current key, mode 0600.

    :raises KeyringError: ``path`` exists (a keyring is never overwritten by accident) or
        cannot be written.
    """
    keyring = Keyring.generate()
    data = keyring._to_json().encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyringError(f"the keyring file {path} exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyringError(f"cannot create the keyring file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is narrowed by the umask, never widened
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyringError(f"cannot write the keyring file {path}: {exc.strerror}") from exc
    os.close(fd)
    _fsync_dir(path.parent)
    log.info("keyring created", extra={"event": "keyring_created", "key_id": keyring.current.id})
    return keyring


def load_keyring(path: Path) -> Keyring:
    """Read a keyring file.

    :raises KeyringError: missing, not a regular file, readable or writable by group or
        others (fix with ``chmod 600``), or malformed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyringError(f"the keyring file {path} does not exist") from None
    except OSError as exc:
        raise KeyringError(f"cannot open the keyring file {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyringError(f"the keyring file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyringError(
                f"the keyring file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                "it must not be open to group or others (chmod 600)"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(1 << 20)  # a keyring of thousands of keys is still far below this
    finally:
        os.close(fd)
    return _parse(raw, f"the keyring file {path}")


def keyring_from_b64(text: str) -> Keyring:
    """Read a keyring from ``DANGAN_KEYRING``: the keyring file's bytes, base64-encoded.

    :raises KeyringError: not base64, or not a keyring.
    """
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError("DANGAN_KEYRING is not valid base64") from None
    return _parse(raw, "DANGAN_KEYRING")


def _parse(raw: bytes, where: str) -> Keyring:
    # Errors name the place and the field, never a value: values are key material.
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyringError(f"{where} is not a JSON keyring") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise KeyringError(f"{where} is not a dangan keyring")
    if doc.get("version") != FORMAT_VERSION:
        raise KeyringError(f"{where} has an unsupported keyring version")
    entries = doc.get("keys")
    current = doc.get("current")
    if not isinstance(entries, list) or not entries or not isinstance(current, str):
        raise KeyringError(f"{where} lacks 'keys' or 'current'")
    keys = []
    for n, entry in enumerate(entries):
        try:
            key_id = entry["id"]
            material = base64.b64decode(entry["key"], validate=True)
            created = dt.datetime.strptime(entry["created"], "%Y-%m-%dT%H:%M:%SZ")
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise KeyringError(f"{where}: key #{n + 1} is malformed") from None
        if not isinstance(key_id, str):
            raise KeyringError(f"{where}: key #{n + 1} has no valid id")
        keys.append(KeyEncryptionKey(key_id, material, created.replace(tzinfo=dt.UTC)))
    return Keyring(keys, current, _parse_signing_key(doc.get("signing_key"), where))


def _parse_signing_key(entry: Any, where: str) -> SigningKey | None:
    if entry is None:
        return None
    try:
        material = base64.b64decode(entry["key"], validate=True)
        created = dt.datetime.strptime(entry["created"], "%Y-%m-%dT%H:%M:%SZ")
        key_id = entry["id"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise KeyringError(f"{where}: the signing key is malformed") from None
    key = SigningKey(material, created.replace(tzinfo=dt.UTC))
    if key_id != key.id:
        raise KeyringError(f"{where}: the signing key's id does not match its key")
    return key


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
