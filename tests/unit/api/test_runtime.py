"""The runtime an entry point builds: lazy catalog, and jobs queued with the configured budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.services import Runtime, initialize
from api.services.keys import rotate_keyring
from catalog import AUDIT_VERIFY
from dangan.config import load_settings
from dangan.errors import StoreUnavailableError


def test_jobs_get_the_configured_retry_budget(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_WORKER__MAX_ATTEMPTS", "2")
    rt = Runtime(load_settings(data_dir=tmp_path / "data"))
    with pytest.raises(StoreUnavailableError, match="dangan init"):
        rt.require_initialised()
    initialize(rt, admin="root", password="correct-horse-battery")
    with rt.require_initialised().write() as s:
        job = rt.enqueue(s, AUDIT_VERIFY, {}, key="k", actor="system")
    rt.close()
    assert job.max_attempts == 2


def test_the_vault_reloads_the_keyring_another_process_saved(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rt = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(rt, admin="root", password="correct-horse-battery")
    vault = rt.vault
    assert vault.keyring is not None
    first = vault.keyring.current.id
    other = Runtime(rt.settings)
    new = rotate_keyring(other, actor="system").current.id
    other.close()
    assert new != first
    assert rt.vault is vault  # the same vault, with the keyring read again
    assert vault.keyring is not None
    assert vault.keyring.current.id == new
    unchanged = vault.keyring
    assert rt.vault.keyring is unchanged  # nothing changed on disk: nothing reloaded
    rt.close()
