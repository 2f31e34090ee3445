"""vault: the encrypted object store (DESIGN.md, "The vault"; byte format in docs/vault-format.md).

Every object is encrypted with its own data key (``stream``), wrapped by the keyring
(``keyring``), and stored in two independent stores (``copies`` over ``backends``). The vault
knows objects by id only: never records, users, settings or HTTP. It imports nothing of
dangan but ``dangan.errors``.
"""

from vault.ids import check_object_id, new_object_id
from vault.keyring import (
    KeyEncryptionKey,
    Keyring,
    create_keyring_file,
    keyring_from_b64,
    load_keyring,
)
from vault.stream import (
    CHUNK,
    EncryptedObject,
    Encryption,
    WrappedKey,
    ciphertext_size,
    decrypt,
    encrypt,
    rewrap,
)

__all__ = [
    "CHUNK",
    "EncryptedObject",
    "Encryption",
    "KeyEncryptionKey",
    "Keyring",
    "WrappedKey",
    "check_object_id",
    "ciphertext_size",
    "create_keyring_file",
    "decrypt",
    "encrypt",
    "keyring_from_b64",
    "load_keyring",
    "new_object_id",
    "rewrap",
]
