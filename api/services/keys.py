"""Key rotation: a new current keyring key, then every data key re-wrapped onto it.

Content is never re-encrypted: only the small wrapped data keys in the catalog change, one
slice per transaction, so an interrupted walk resumes where it stopped (:func:`rewrap_all`
picks up whatever is still wrapped by an older key). Old keys stay in the keyring until no
object uses them. Nothing here logs or prints key material.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from api.services.jobs import rewrap_slice
from api.services.runtime import Runtime
from api.services.vault import load_configured_keyring
from catalog import count_objects_by_key, record_event
from dangan.errors import KeyringError
from vault import Keyring, SigningKey

__all__ = [
    "ensure_signing_key",
    "objects_left_to_rewrap",
    "retire_key",
    "rewrap_all",
    "rotate_keyring",
]


def _keyring_file(rt: Runtime) -> Path:
    if rt.settings.keyring is not None:
        raise KeyringError(
            "the keyring comes from DANGAN_KEYRING; change the keyring file it was made from "
            "and set the variable again"
        )
    path = rt.settings.vault.keyring_path
    if path is None:
        raise KeyringError("no keyring file configured (vault.keyring_path)")
    return path


@contextlib.contextmanager
def _keyring_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<keyring>.lock`` (mode 0600) so that a load, change
    and save of the keyring file is never interleaved with another process's: two rotations
    at once would otherwise each save a keyring lacking the other's new key.

    :raises KeyringError: the lock file cannot be opened.
    """
    lock = path.with_name(f"{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise KeyringError(f"cannot open the keyring lock {lock}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def rotate_keyring(rt: Runtime, *, actor: str) -> Keyring:
    """Add a fresh current key to the keyring file and save it (mode 0600, atomically).

    :raises KeyringError: the keyring comes from ``DANGAN_KEYRING`` (rotate the file it was
        made from instead), or the file cannot be read or written.
    """
    path = _keyring_file(rt)
    with _keyring_lock(path):
        keyring = load_configured_keyring(rt.settings)
        old = keyring.current.id
        new = keyring.rotate()
        keyring.save(path)
    # this process reads and writes with the new key from now on (rt.vault sees the new file)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="keys.rotate",
            target=f"key:{new.id}",
            detail={"previous": old},
        )
    return keyring


def retire_key(rt: Runtime, key_id: str, *, actor: str) -> None:
    """Remove an old key from the keyring file, only if no live object's data key uses it.

    Back up the keyring before: a catalog backup older than the re-wrap still names the key.

    :raises KeyringError: the key is current, unknown, or still wraps data keys.
    """
    path = _keyring_file(rt)
    with _keyring_lock(path):
        keyring = load_configured_keyring(rt.settings)
        if key_id == keyring.current.id:  # checked before the catalog is asked
            raise KeyringError(f"keyring key {key_id} is current and cannot be retired")
        with rt.db.read() as session:
            using = count_objects_by_key(session).get(key_id, 0)
        keyring.retire(key_id, objects_using=using)
        keyring.save(path)
    with rt.db.write() as session:
        record_event(session, actor=actor, action="keys.retire", target=f"key:{key_id}")


def objects_left_to_rewrap(rt: Runtime, keyring: Keyring) -> int:
    """How many live objects are still wrapped by another key than the current one."""
    with rt.db.read() as session:
        counts = count_objects_by_key(session)
    return sum(n for key_id, n in counts.items() if key_id != keyring.current.id)


def rewrap_all(
    rt: Runtime,
    keyring: Keyring,
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-wrap every data key not yet on the current key, slice by slice.

    :param progress: called with the number re-wrapped in each slice.
    :returns: how many data keys were re-wrapped.
    :raises KeyringError: a data key names a key this keyring lacks.
    """
    total = 0
    cursor: str | None = ""
    while cursor is not None:
        done, cursor = rewrap_slice(rt, keyring, after=cursor, actor=actor)
        total += done
        if progress is not None:
            progress(done)
    with rt.db.write() as session:
        record_event(
            session,
            actor=actor,
            action="keys.rewrap",
            target=f"key:{keyring.current.id}",
            detail={"rewrapped": total},
        )
    return total


def ensure_signing_key(rt: Runtime, *, actor: str) -> SigningKey:
    """The instance's Ed25519 signing key, made and saved in the keyring file on first need.

    A keyring written before signing keys existed has none: one is generated under the
    keyring's lock, saved atomically with mode 0600, and audited (``keys.signing_key``). An
    existing key is never replaced.

    :raises KeyringError: the keyring comes from ``DANGAN_KEYRING`` and has no signing key, or
        the file cannot be read or written.
    """
    vault = rt.fresh_vault()
    if vault.keyring is not None and vault.keyring.signing_key is not None:
        return vault.keyring.signing_key
    if rt.settings.keyring is not None:
        raise KeyringError(
            "the keyring from DANGAN_KEYRING has no signing key; run a signing command once "
            "with the keyring file it was made from, and set the variable again"
        )
    path = _keyring_file(rt)
    with _keyring_lock(path):
        keyring = load_configured_keyring(rt.settings)
        created = keyring.signing_key is None
        key = keyring.add_signing_key()
        if created:
            keyring.save(path)
    rt.fresh_vault()  # this process signs with the saved key from now on
    if created:
        with rt.db.write() as session:
            record_event(session, actor=actor, action="keys.signing_key", target=f"key:{key.id}")
    return key
