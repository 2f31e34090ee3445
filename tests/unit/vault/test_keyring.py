"""The keyring: file modes, rotation with re-wrapping, retiring, and keys that never show."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from dangan.errors import CorruptDataError, KeyringError
from vault import (
    Keyring,
    WrappedKey,
    create_keyring_file,
    decrypt,
    encrypt,
    keyring_from_b64,
    load_keyring,
    new_object_id,
    rewrap,
)


def _materials(keyring: Keyring) -> list[bytes]:
    return [keyring.get(key_id)._material for key_id in keyring.key_ids]


def test_create_writes_mode_0600_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    created = create_keyring_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_keyring(path)
    assert loaded.key_ids == created.key_ids
    assert loaded.current.id == created.current.id
    assert _materials(loaded) == _materials(created)
    doc = json.loads(path.read_text())
    assert doc["format"] == "dangan-keyring"
    assert doc["current"] == created.current.id


def test_create_keeps_0600_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_keyring_file(tmp_path / "keyring")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keyring").stat().st_mode) == 0o600


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    first = create_keyring_file(path)
    with pytest.raises(KeyringError, match="exists"):
        create_keyring_file(path)
    assert load_keyring(path).current.id == first.current.id


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o620, 0o660])
def test_load_refuses_a_file_open_to_group_or_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring"
    create_keyring_file(path)
    path.chmod(mode)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring(path)


def test_load_refuses_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_text('{"format": "something else"}')
    bad.chmod(0o600)
    with pytest.raises(KeyringError, match="not a dangan keyring"):
        load_keyring(bad)
    bad.write_text("not json")
    with pytest.raises(KeyringError, match="not a JSON keyring"):
        load_keyring(bad)


def test_b64_reads_the_same_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    created = create_keyring_file(path)
    text = base64.b64encode(path.read_bytes()).decode()
    loaded = keyring_from_b64(text[:10] + "\n" + text[10:])
    assert loaded.current.id == created.current.id
    assert _materials(loaded) == _materials(created)
    with pytest.raises(KeyringError, match="base64"):
        keyring_from_b64("!!! not base64 !!!")
    with pytest.raises(KeyringError):
        keyring_from_b64(base64.b64encode(b"[]").decode())


def test_repr_and_errors_never_show_key_material(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    keyring = create_keyring_file(path)
    keyring.rotate()
    shown = repr(keyring) + str(keyring) + repr(keyring.current) + str(keyring.current)
    for material in _materials(keyring):
        assert material.hex() not in shown
        assert base64.b64encode(material).decode() not in shown
        assert repr(material) not in shown
    assert "hidden" in repr(keyring.current)
    path.chmod(0o644)
    with pytest.raises(KeyringError) as excinfo:
        load_keyring(path)
    for material in _materials(keyring):
        assert base64.b64encode(material).decode() not in str(excinfo.value)


def test_rotate_save_and_rewrap_keep_every_object_readable(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    keyring = create_keyring_file(path)
    old_id = keyring.current.id
    oid = new_object_id()
    record = "student record 学籍档案".encode()
    enc = encrypt(oid, [record], keyring, segment_size=16)
    ciphertext = b"".join(enc)
    assert enc.wrapped_key.key_id == old_id

    new = keyring.rotate()
    keyring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reloaded = load_keyring(path)
    assert reloaded.current.id == new.id != old_id
    assert set(reloaded.key_ids) == {old_id, new.id}

    rewrapped = rewrap(WrappedKey.from_bytes(enc.wrapped_key.to_bytes()), reloaded)
    assert rewrapped.key_id == new.id
    assert rewrap(rewrapped, reloaded) is rewrapped  # already current: nothing to do
    assert b"".join(decrypt(oid, rewrapped, [ciphertext], reloaded)) == record

    reloaded.retire(old_id, objects_using=0)
    assert reloaded.key_ids == (new.id,)
    assert b"".join(decrypt(oid, rewrapped, [ciphertext], reloaded)).startswith(b"student")
    with pytest.raises(KeyringError, match="not in the keyring"):
        decrypt(oid, enc.wrapped_key, [ciphertext], reloaded)


def test_retire_refuses_the_current_key_and_keys_in_use() -> None:
    keyring = Keyring.generate()
    first = keyring.current.id
    with pytest.raises(KeyringError, match="current"):
        keyring.retire(first, objects_using=0)
    keyring.rotate()
    with pytest.raises(KeyringError, match="still wraps 3"):
        keyring.retire(first, objects_using=3)
    with pytest.raises(KeyringError, match="not in the keyring"):
        keyring.retire("k-unknown", objects_using=0)
    assert first in keyring.key_ids


def test_a_wrapped_key_opens_only_with_its_own_keyring() -> None:
    oid = new_object_id()
    enc = encrypt(oid, [b"x"], Keyring.generate(), segment_size=16)
    ciphertext = b"".join(enc)
    with pytest.raises(KeyringError):
        decrypt(oid, enc.wrapped_key, [ciphertext], Keyring.generate())


def test_a_tampered_wrapped_key_is_corrupt() -> None:
    keyring = Keyring.generate()
    oid = new_object_id()
    enc = encrypt(oid, [b"x"], keyring, segment_size=16)
    raw = bytearray(enc.wrapped_key.to_bytes())
    raw[-1] ^= 1
    with pytest.raises(CorruptDataError, match="does not open"):
        decrypt(oid, WrappedKey.from_bytes(bytes(raw)), [b""], keyring)
    with pytest.raises(CorruptDataError, match="malformed"):
        WrappedKey.from_bytes(bytes(raw[:-1]))
    assert "sealed" not in repr(enc.wrapped_key)
