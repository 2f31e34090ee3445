"""The segmented AES-GCM stream: round trips for any bytes and chunking, and every way of
tampering with stored bytes (bit flips, truncation, extension, reordering, swapping segments
or whole objects) ends in CorruptDataError.

Property tests use small segments so that many segments fit in a few hundred bytes; the
real 1 MiB segment size is covered by the fixed sizes at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.errors import CorruptDataError, InvalidInputError
from vault import (
    CHUNK,
    Keyring,
    WrappedKey,
    ciphertext_size,
    create_keyring_file,
    decrypt,
    encrypt,
    new_object_id,
)
from vault.stream import HEADER_SIZE, TAG_SIZE, TRAILER_SIZE, default_suite

KEYRING = Keyring.generate()
SEGMENT_SIZES = st.sampled_from([16, 17, 33, 64])
PLAINTEXT = st.binary(max_size=400)
CUTS = st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=8)
# Two shared cores: a slow example is load, not a failure.
PROPERTY = settings(deadline=None)


def cut(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` in pieces of the given sizes, repeated until it is used up."""
    at, n = 0, 0
    while at < len(data):
        size = sizes[n % len(sizes)]
        yield data[at : at + size]
        at += size
        n += 1


def seal(
    data: bytes, segment_size: int, object_id: str | None = None
) -> tuple[str, WrappedKey, bytes]:
    oid = object_id or new_object_id()
    enc = encrypt(oid, [data], KEYRING, segment_size=segment_size)
    return oid, enc.wrapped_key, b"".join(enc)


def open_all(oid: str, wrapped: WrappedKey, chunks: Iterable[bytes], **kw: str) -> bytes:
    return b"".join(decrypt(oid, wrapped, chunks, KEYRING, **kw))


def split_segments(ciphertext: bytes, segment_size: int) -> tuple[bytes, list[bytes], bytes]:
    """Header, data segments and trailer, by the layout of docs/vault-format.md."""
    header, body = ciphertext[:HEADER_SIZE], ciphertext[HEADER_SIZE:-TRAILER_SIZE]
    sealed = segment_size + TAG_SIZE
    return (
        header,
        [body[i : i + sealed] for i in range(0, len(body), sealed)],
        ciphertext[-TRAILER_SIZE:],
    )


def drain(pieces: Iterable[bytes], *, into: bytearray) -> None:
    """Keep what a consumer would have received before an exception."""
    for piece in pieces:
        into += piece


def assert_corrupt(oid: str, wrapped: WrappedKey, ciphertext: bytes, data: bytes) -> None:
    """Decrypting raises, and what was handed out before is a strict prefix of the original:
    no altered or misplaced byte, and never the whole file."""
    received = bytearray()
    with pytest.raises(CorruptDataError):
        drain(decrypt(oid, wrapped, [ciphertext], KEYRING), into=received)
    assert data.startswith(received)
    assert len(received) < len(data) or not data


# --- round trips --------------------------------------------------------------------------


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES, in_cuts=CUTS, out_cuts=CUTS)
def test_any_bytes_in_any_chunking_round_trip(
    data: bytes, segment_size: int, in_cuts: list[int], out_cuts: list[int]
) -> None:
    oid = new_object_id()
    enc = encrypt(oid, cut(data, in_cuts), KEYRING, segment_size=segment_size)
    ciphertext = b"".join(enc)
    result = enc.result
    assert result.plaintext_size == len(data)
    assert result.plaintext_sha256 == hashlib.new(result.algorithm, data).hexdigest()
    assert result.ciphertext_size == len(ciphertext) == ciphertext_size(len(data), segment_size)
    pieces = list(decrypt(oid, enc.wrapped_key, cut(ciphertext, out_cuts), KEYRING))
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= segment_size for p in pieces)


@PROPERTY
@given(data=PLAINTEXT)
def test_the_same_plaintext_never_encrypts_the_same_way(data: bytes) -> None:
    oid = new_object_id()
    assert seal(data, 16, oid)[2] != seal(data, 16, oid)[2]


# --- tampering ----------------------------------------------------------------------------


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES, where=st.data())
def test_any_bit_flip_is_detected(data: bytes, segment_size: int, where: st.DataObject) -> None:
    oid, wrapped, ciphertext = seal(data, segment_size)
    bit = where.draw(st.integers(min_value=0, max_value=len(ciphertext) * 8 - 1))
    flipped = bytearray(ciphertext)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert_corrupt(oid, wrapped, bytes(flipped), data)


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES, where=st.data())
def test_any_truncation_is_detected(data: bytes, segment_size: int, where: st.DataObject) -> None:
    oid, wrapped, ciphertext = seal(data, segment_size)
    keep = where.draw(st.integers(min_value=0, max_value=len(ciphertext) - 1))
    assert_corrupt(oid, wrapped, ciphertext[:keep], data)


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES, extra=st.binary(min_size=1, max_size=200))
def test_any_extension_is_detected(data: bytes, segment_size: int, extra: bytes) -> None:
    oid, wrapped, ciphertext = seal(data, segment_size)
    assert_corrupt(oid, wrapped, ciphertext + extra, data)


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES, where=st.data())
def test_removing_or_duplicating_a_segment_is_detected(
    data: bytes, segment_size: int, where: st.DataObject
) -> None:
    oid, wrapped, ciphertext = seal(data, segment_size)
    header, segments, trailer = split_segments(ciphertext, segment_size)
    if not segments:
        return
    i = where.draw(st.integers(min_value=0, max_value=len(segments) - 1))
    assert_corrupt(
        oid, wrapped, header + b"".join(segments[:i] + segments[i + 1 :]) + trailer, data
    )
    assert_corrupt(
        oid, wrapped, header + b"".join(segments[: i + 1] + segments[i:]) + trailer, data
    )


@PROPERTY
@given(data=st.binary(min_size=34, max_size=400), segment_size=SEGMENT_SIZES, where=st.data())
def test_any_segment_reorder_is_detected(
    data: bytes, segment_size: int, where: st.DataObject
) -> None:
    oid, wrapped, ciphertext = seal(data, segment_size)
    header, segments, trailer = split_segments(ciphertext, segment_size)
    order = where.draw(st.permutations(range(len(segments))))
    if order == sorted(order):
        return
    reordered = header + b"".join(segments[i] for i in order) + trailer
    assert_corrupt(oid, wrapped, reordered, data)


@PROPERTY
@given(size=st.integers(min_value=1, max_value=300), segment_size=SEGMENT_SIZES, where=st.data())
def test_a_segment_swapped_in_from_another_object_is_detected(
    size: int, segment_size: int, where: st.DataObject
) -> None:
    data = os.urandom(size)
    oid, wrapped, ciphertext = seal(data, segment_size)
    _, _, other = seal(data, segment_size, oid)  # same id, same size, same bytes: another key
    header, segments, trailer = split_segments(ciphertext, segment_size)
    o_header, o_segments, o_trailer = split_segments(other, segment_size)
    i = where.draw(st.integers(min_value=0, max_value=len(segments) - 1))
    swapped = [*segments[:i], o_segments[i], *segments[i + 1 :]]
    assert_corrupt(oid, wrapped, header + b"".join(swapped) + trailer, data)
    assert_corrupt(oid, wrapped, o_header + b"".join(segments) + trailer, data)
    assert_corrupt(oid, wrapped, header + b"".join(segments) + o_trailer, data)


@PROPERTY
@given(data=PLAINTEXT, segment_size=SEGMENT_SIZES)
def test_a_whole_object_swapped_for_another_is_detected(data: bytes, segment_size: int) -> None:
    _, a_key, a_ct = seal(data, segment_size)
    b_id, b_key, _ = seal(data, segment_size)
    assert_corrupt(b_id, b_key, a_ct, data)  # the store holds A's bytes under B's name
    with pytest.raises(CorruptDataError, match="another's"):
        decrypt(b_id, a_key, [a_ct], KEYRING)  # the catalog hands A's key out for B


# --- the final check ----------------------------------------------------------------------


def test_a_bad_trailer_withholds_the_last_segment() -> None:
    data = os.urandom(100)
    oid, wrapped, ciphertext = seal(data, 16)
    bad = bytearray(ciphertext)
    bad[-1] ^= 0x80
    received = bytearray()
    with pytest.raises(CorruptDataError, match="trailer"):
        drain(decrypt(oid, wrapped, [bytes(bad)], KEYRING), into=received)
    assert data.startswith(bytes(received))
    assert len(received) < len(data)


def test_an_unexpected_plaintext_hash_is_corrupt_and_withholds_the_last_segment() -> None:
    data = os.urandom(100)
    oid, wrapped, ciphertext = seal(data, 16)
    received = bytearray()
    with pytest.raises(CorruptDataError, match="expected"):
        drain(
            decrypt(oid, wrapped, [ciphertext], KEYRING, plaintext_sha256="0" * 64), into=received
        )
    assert len(received) < len(data)
    good = hashlib.new(default_suite().digest, data).hexdigest()
    assert open_all(oid, wrapped, [ciphertext], plaintext_sha256=good) == data


def test_bad_arguments_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        encrypt("../etc/passwd", [b""], KEYRING)
    with pytest.raises(InvalidInputError):
        encrypt(new_object_id(), [b""], KEYRING, segment_size=8)
    oid, wrapped, ciphertext = seal(b"x", 16)
    with pytest.raises(InvalidInputError):
        decrypt(oid, wrapped, [ciphertext], KEYRING, plaintext_sha256="abc")


def test_the_result_is_known_only_at_the_end() -> None:
    enc = encrypt(new_object_id(), [b"abc"], KEYRING)
    next(enc)
    with pytest.raises(RuntimeError):
        enc.result  # noqa: B018 - the property raises
    list(enc)
    assert enc.result.plaintext_size == 3


# --- real segment size ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
def test_real_sizes_round_trip(size: int) -> None:
    data = os.urandom(size)
    oid = new_object_id()
    enc = encrypt(oid, cut(data, [CHUNK // 3 + 1]), KEYRING)
    ciphertext = b"".join(enc)
    assert len(ciphertext) == ciphertext_size(size)
    pieces = list(decrypt(oid, enc.wrapped_key, cut(ciphertext, [65536]), KEYRING))
    assert b"".join(pieces) == data
    assert [len(p) for p in pieces] == [CHUNK] * (size // CHUNK) + (
        [size % CHUNK] if size % CHUNK else []
    )


@pytest.mark.parametrize("size", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
def test_real_sizes_detect_tampering(size: int) -> None:
    data = os.urandom(size)
    oid, wrapped, ciphertext = seal(data, CHUNK)
    header, segments, trailer = split_segments(ciphertext, CHUNK)
    flipped = bytearray(ciphertext)
    flipped[len(ciphertext) // 2] ^= 4
    assert_corrupt(oid, wrapped, bytes(flipped), data)
    assert_corrupt(oid, wrapped, ciphertext[:-1], data)
    assert_corrupt(oid, wrapped, ciphertext + b"\0", data)
    assert_corrupt(oid, wrapped, header + b"".join(segments[:-1]) + trailer, data)
    if len(segments) > 1:
        assert_corrupt(oid, wrapped, header + b"".join(reversed(segments)) + trailer, data)


@settings(max_examples=10, deadline=None)
@given(data=st.binary(max_size=64))
def test_an_object_with_segment_size_one_mib_and_tiny_content(data: bytes) -> None:
    oid, wrapped, ciphertext = seal(data, CHUNK)
    assert open_all(oid, wrapped, [ciphertext]) == data


# --- the written format -------------------------------------------------------------------


def test_the_documented_recipe_decrypts_an_object(tmp_path: Path) -> None:
    """docs/vault-format.md's hand decryption, run as written, reads what dangan wrote."""
    doc = (Path(__file__).parents[3] / "docs" / "vault-format.md").read_text()
    recipe = doc.split("```python\n")[-1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec(compile(recipe, "vault-format.md", "exec"), namespace)  # noqa: S102 - our own doc
    keyring_path = tmp_path / "keyring"
    keyring = create_keyring_file(keyring_path)
    keyring.rotate()
    data = os.urandom(3 * 64 + 5)
    oid = new_object_id()
    enc = encrypt(oid, [data], keyring, segment_size=64)
    stored = b"".join(enc)
    keyring_json = json.loads(keyring._to_json())
    assert namespace["open_object"](keyring_json, oid, enc.wrapped_key.to_bytes(), stored) == data
