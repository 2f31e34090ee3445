"""The 国密 primitives against their published answers, and suites a reader must refuse."""

from __future__ import annotations

import pytest

from dangan.errors import CorruptDataError, InvalidInputError
from vault import SUITES, Keyring, decrypt, encrypt, new_hash, new_object_id, suite_for


def test_sm3_gives_the_answer_of_gb_t_32905_appendix_a() -> None:
    digest = new_hash("sm3")
    digest.update(b"abc")
    assert digest.hexdigest() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm4_gcm_gives_the_answer_of_rfc_8998_appendix_a() -> None:
    aead = SUITES[2].aead(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    nonce = bytes.fromhex("00001234567800000000ABCD")
    ad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    sealed = aead.encrypt(nonce, plain, ad)
    assert sealed.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    assert aead.decrypt(nonce, sealed, ad) == plain


def test_settings_names_map_to_suites_and_bad_names_are_refused() -> None:
    assert suite_for("aes-256-gcm", "sha256").id == 1
    assert suite_for("sm4-gcm", "sm3").id == 2
    with pytest.raises(InvalidInputError):
        suite_for("sm4-cbc", "sm3")
    with pytest.raises(InvalidInputError):
        new_hash("md5")


@pytest.mark.parametrize(("written", "claimed"), [(2, 1), (2, 4), (1, 2), (1, 3), (1, 9)])
def test_a_header_naming_another_suite_does_not_open(written: int, claimed: int) -> None:
    keyring = Keyring.generate()
    oid = new_object_id()
    enc = encrypt(oid, [b"x" * 100], keyring, segment_size=32, suite=SUITES[written])
    stored = bytearray(b"".join(enc))
    assert stored[7] == written
    stored[7] = claimed
    with pytest.raises(CorruptDataError):
        b"".join(decrypt(oid, enc.wrapped_key, [bytes(stored)], keyring))
