"""vault: the encrypted object store (DESIGN.md, "The vault"; byte format in docs/vault-format.md).

Every object is encrypted with its own data key (``stream``), wrapped by the keyring
(``keyring``), and stored in two independent stores (``copies`` over ``backends``). The vault
knows objects by id only: never records, users, settings or HTTP. It imports nothing of
dangan but ``dangan.errors``.

A service layer typically builds one :class:`Vault` from two backends and a keyring, then
calls :meth:`Vault.write`, :meth:`Vault.read`, :meth:`Vault.verify_copy`,
:meth:`Vault.repair_copy`, :meth:`Vault.delete_object`, and :func:`rewrap` after
:meth:`Keyring.rotate`. :meth:`Vault.write_sealed` / :meth:`Vault.read_sealed` keep objects
that carry their own wrapped key (record sidecars), readable from the stores and keyring alone.
:func:`suite_for` names the cipher and digest new objects are written in (AES-256-GCM or
SM4-GCM, SHA-256 or SM3); every object records its own, so reading needs no choice.
"""

from vault.backends import (
    Backend,
    FsBackend,
    ObjectInfo,
    ObjectStream,
    S3Backend,
    StoredObject,
    read_back,
)
from vault.copies import STORES, CopyStatus, ObjectReader, StoreName, Vault, WriteResult
from vault.ids import check_object_id, new_object_id
from vault.keyring import (
    KeyEncryptionKey,
    Keyring,
    SigningKey,
    create_keyring_file,
    keyring_from_b64,
    load_keyring,
    signing_key_id,
)
from vault.sealed import MAGIC_SEALED, is_sealed
from vault.stream import (
    CHUNK,
    EncryptedObject,
    Encryption,
    WrappedKey,
    check_wrapped_key,
    ciphertext_size,
    decrypt,
    encrypt,
    rewrap,
)
from vault.suites import (
    CIPHERS,
    DEFAULT_SUITE,
    DIGESTS,
    SUITES,
    CipherName,
    DigestName,
    Suite,
    check_digest,
    new_hash,
    suite_for,
)

__all__ = [
    "CHUNK",
    "CIPHERS",
    "DEFAULT_SUITE",
    "DIGESTS",
    "MAGIC_SEALED",
    "STORES",
    "SUITES",
    "Backend",
    "CipherName",
    "CopyStatus",
    "DigestName",
    "EncryptedObject",
    "Encryption",
    "FsBackend",
    "KeyEncryptionKey",
    "Keyring",
    "ObjectInfo",
    "ObjectReader",
    "ObjectStream",
    "S3Backend",
    "SigningKey",
    "StoreName",
    "StoredObject",
    "Suite",
    "Vault",
    "WrappedKey",
    "WriteResult",
    "check_digest",
    "check_object_id",
    "check_wrapped_key",
    "ciphertext_size",
    "create_keyring_file",
    "decrypt",
    "encrypt",
    "is_sealed",
    "keyring_from_b64",
    "load_keyring",
    "new_hash",
    "new_object_id",
    "read_back",
    "rewrap",
    "signing_key_id",
    "suite_for",
]
