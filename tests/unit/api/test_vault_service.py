"""The vault built from the settings: fs stores, the keyring file or DANGAN_KEYRING."""

from __future__ import annotations

import base64
import os

import pytest

from api.services import Runtime, initialize
from dangan.config import Settings, load_settings
from dangan.errors import KeyringError


def _init(settings: Settings) -> Runtime:
    rt = Runtime(settings)
    initialize(rt, admin="root", password="correct-horse-battery")
    return rt


def test_vault_round_trips_on_the_embedded_default(settings: Settings) -> None:
    rt = _init(settings)
    try:
        result = rt.vault.write("0" * 32, [b"hello"])
        assert not result.is_under_replicated
        assert rt.vault is rt.vault  # cached
        with rt.vault.read("0" * 32, result.wrapped_key) as reader:
            assert b"".join(reader) == b"hello"
    finally:
        rt.close()


def test_an_open_keyring_file_is_refused(settings: Settings) -> None:
    rt = _init(settings)
    try:
        assert settings.vault.keyring_path is not None
        os.chmod(settings.vault.keyring_path, 0o644)
        with pytest.raises(KeyringError, match="chmod 600"):
            _ = rt.vault
    finally:
        rt.close()


def test_dangan_keyring_overrides_the_file(
    settings: Settings, clean_env: pytest.MonkeyPatch
) -> None:
    rt = _init(settings)
    assert settings.vault.keyring_path is not None
    raw = settings.vault.keyring_path.read_bytes()
    settings.vault.keyring_path.unlink()
    clean_env.setenv("DANGAN_KEYRING", base64.b64encode(raw).decode())
    other = Runtime(load_settings(data_dir=settings.data_dir))
    try:
        key_id = other.vault.write("1" * 32, [b"x"]).wrapped_key.key_id
        assert other.vault.keyring is not None
        assert key_id == other.vault.keyring.current.id
    finally:
        other.close()
        rt.close()
