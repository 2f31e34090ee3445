"""A 3 GiB generated stream encrypts and decrypts without ever being held in memory.

Nothing touches the disk: the ciphertext flows straight from the encryptor into the
decryptor, and each decrypted segment is compared with the one regenerated for its place.
About 10 s on two cores; set ``DANGAN_SKIP_HUGE=1`` to leave it out of a quick run.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

from vault import CHUNK, Keyring, ciphertext_size, decrypt, encrypt, new_object_id

SIZE = 3 << 30
BLOCK = os.urandom(CHUNK)

pytestmark = pytest.mark.skipif(
    os.environ.get("DANGAN_SKIP_HUGE") == "1", reason="DANGAN_SKIP_HUGE=1"
)


def block(n: int) -> bytes:
    """The n-th MiB of the stream: a random block stamped with its number."""
    return n.to_bytes(8, "big") + BLOCK[8:]


def generated() -> Iterator[bytes]:
    for n in range(SIZE // CHUNK):
        yield block(n)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_three_gib_round_trip_in_flat_memory() -> None:
    keyring = Keyring.generate()
    oid = new_object_id()
    before = peak_rss_mib()
    enc = encrypt(oid, generated(), keyring)
    stored = 0

    def counted() -> Iterator[bytes]:
        nonlocal stored
        for piece in enc:
            stored += len(piece)
            yield piece

    n = 0
    for piece in decrypt(oid, enc.wrapped_key, counted(), keyring):
        assert piece == block(n)
        n += 1
    assert n == SIZE // CHUNK
    assert enc.result.plaintext_size == SIZE
    assert stored == enc.result.ciphertext_size == ciphertext_size(SIZE)
    assert peak_rss_mib() - before < 64
