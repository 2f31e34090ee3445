"""The vault as the settings describe it: two stores and the keyring.

``vault`` never reads the settings (STYLE.md); this module is where they become plain
arguments. It must never log or print a key, a secret of the settings or a byte of content.
"""

from __future__ import annotations

import logging
import os

from dangan.config import Settings, StoreSettings
from dangan.errors import KeyringError, StoreUnavailableError
from vault import (
    Backend,
    FsBackend,
    Keyring,
    S3Backend,
    Suite,
    Vault,
    keyring_from_b64,
    load_keyring,
    suite_for,
)

__all__ = [
    "KeyringStamp",
    "build_backend",
    "build_vault",
    "configured_suite",
    "ensure_store",
    "keyring_stamp",
    "load_configured_keyring",
]

KeyringStamp = tuple[int, int, int] | None
"""What :func:`keyring_stamp` tells apart: inode, size and mtime (ns) of the keyring file."""

log = logging.getLogger(__name__)


def build_backend(name: str, store: StoreSettings) -> Backend:
    """One store as configured: a directory (``fs``) or a bucket (``s3``).

    :raises StoreUnavailableError: an ``fs`` store without a path (only if defaults were
        bypassed) or an ``s3`` store without an endpoint or credentials.
    """
    if store.kind == "fs":
        if store.path is None:
            raise StoreUnavailableError(f"vault.{name} is an fs store without a path")
        return FsBackend(store.path)
    if not store.endpoint or store.access_key is None or store.secret_key is None:
        raise StoreUnavailableError(f"vault.{name} is an s3 store without endpoint or keys")
    return S3Backend.connect(
        store.endpoint,
        access_key=store.access_key.get_secret_value(),
        secret_key=store.secret_key.get_secret_value(),
        bucket=store.bucket,
        secure=store.secure,
        region=store.region,
    )


def load_configured_keyring(settings: Settings) -> Keyring:
    """``DANGAN_KEYRING`` (base64) if set, else the keyring file (refused if group or world
    may read it).

    :raises KeyringError: missing, too open, or malformed.
    """
    if settings.keyring is not None:
        return keyring_from_b64(settings.keyring.get_secret_value())
    path = settings.vault.keyring_path
    if path is None:
        raise KeyringError("no keyring configured: set DANGAN_KEYRING or vault.keyring_path")
    return load_keyring(path)


def keyring_stamp(settings: Settings) -> KeyringStamp:
    """The keyring file's inode, size and mtime (ns), to notice that another process saved it
    (``dangan keys rotate`` / ``retire`` replace the file atomically, so the inode changes).

    :returns: ``None`` when the keyring comes from ``DANGAN_KEYRING`` (it cannot change under
        a running process) or no keyring file is configured.
    :raises KeyringError: the configured keyring file cannot be examined (gone, no access).
    """
    if settings.keyring is not None:
        return None
    path = settings.vault.keyring_path
    if path is None:
        return None
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        raise KeyringError(f"cannot examine the keyring file {path}: {exc.strerror}") from exc
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def build_vault(settings: Settings, *, with_keyring: bool = True) -> Vault:
    """Both stores and (unless ``with_keyring`` is false, for keyless checks) the keyring.

    :raises KeyringError: the keyring cannot be loaded.
    """
    primary = build_backend("primary", settings.vault.primary)
    replica = build_backend("replica", settings.vault.replica)
    keyring = load_configured_keyring(settings) if with_keyring else None
    return Vault(primary, replica, keyring, suite=configured_suite(settings))


def configured_suite(settings: Settings) -> Suite:
    """The cipher suite new objects are written in (``crypto.cipher`` and ``crypto.digest``)."""
    return suite_for(settings.crypto.cipher, settings.crypto.digest)


def ensure_store(store: StoreSettings) -> bool:
    """Create an ``s3`` store's bucket if it is missing (``dangan init``).

    :returns: whether a bucket was created; ``fs`` stores are made by ``init`` itself.
    :raises StoreUnavailableError: the server cannot be reached or refuses.
    """
    if store.kind != "s3":
        return False
    backend = build_backend("store", store)
    if not isinstance(backend, S3Backend) or not backend.ensure_bucket():
        return False
    log.info("s3 bucket created", extra={"event": "vault_bucket_created", "bucket": store.bucket})
    return True
