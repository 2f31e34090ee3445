"""The keyring's Ed25519 signing key: optional, made on first need, kept across saves."""

from __future__ import annotations

import json
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dangan.errors import KeyringError
from vault import Keyring, create_keyring_file, load_keyring, signing_key_id


def test_an_older_keyring_has_none_and_gets_one_that_survives_saves(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    create_keyring_file(path)
    assert "signing_key" not in json.loads(path.read_text())
    keyring = load_keyring(path)
    assert keyring.signing_key is None

    key = keyring.add_signing_key()
    assert keyring.add_signing_key() is key  # never replaced
    keyring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_keyring(path)
    assert again.signing_key is not None
    assert again.signing_key.id == key.id == signing_key_id(key.public_key)
    assert key.id.startswith("s")
    assert len(key.public_key) == 32

    # A rotation keeps it.
    again.rotate()
    again.save(path)
    kept = load_keyring(path).signing_key
    assert kept is not None
    signature = kept.sign(b"message")
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, b"message")
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, b"massage")


def test_the_private_key_never_shows(tmp_path: Path) -> None:
    key = Keyring.generate().add_signing_key()
    assert "hidden" in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_a_signing_key_whose_id_does_not_match_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    keyring = create_keyring_file(path)
    keyring.add_signing_key()
    keyring.save(path)
    doc = json.loads(path.read_text())
    doc["signing_key"]["id"] = "s0000000000000000"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyringError, match="signing key"):
        load_keyring(path)
    doc["signing_key"]["key"] = "not base64!"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyringError, match="malformed"):
        load_keyring(path)
