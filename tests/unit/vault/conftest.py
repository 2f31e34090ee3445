"""Every vault unit test runs once per cipher suite family: the default (AES-256-GCM with
SHA-256, suite 1) and 国密 (SM4-GCM with SM3, suite 2), so "the vault tests pass with SM3 and
SM4 selected" is checked by the same tests (issue #10). The suite is what ``encrypt`` and
``Vault`` use when given none, the way an archive configured for one would use it; the few
tests that pin a format byte by byte name their suite themselves.

``test_stream_huge`` stays on the default: it is slow, and no code in it depends on the suite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import vault.stream
from vault import SUITES, Suite

_SUITES = {"aes-sha256": SUITES[1], "sm4-sm3": SUITES[2]}
_DEFAULT_ONLY = ("test_stream_huge",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vault_suite" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    names = ["aes-sha256"] if module in _DEFAULT_ONLY else list(_SUITES)
    metafunc.parametrize("vault_suite", names, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def vault_suite(request: pytest.FixtureRequest) -> Iterator[Suite]:
    """The suite new objects are written in while the module's tests run."""
    suite = _SUITES[getattr(request, "param", "aes-sha256")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vault.stream, "DEFAULT_SUITE", suite)
        yield suite
