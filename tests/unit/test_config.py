"""The settings: every field documented, the sources in their order, bad values named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from dangan.config import Settings, load_settings
from dangan.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted TOML keys of every setting, descending into nested sections."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaf_keys(annotation, f"{key}.")
        else:
            yield key


def _env_name(key: str) -> str:
    return "DANGAN_" + key.upper().replace(".", "__")


ALL_KEYS = sorted(_leaf_keys(Settings))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_walk_reaches_the_nested_stores() -> None:
    assert "vault.primary.secret_key" in ALL_KEYS
    assert "vault.replica.endpoint" in ALL_KEYS
    assert "data_dir" in ALL_KEYS
    assert "vault" not in ALL_KEYS  # sections are not settings, their fields are


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_setting_is_documented(key: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert f"`{key}`" in doc, f"docs/configuration.md does not document {key}"
    assert f"`{_env_name(key)}`" in doc, f"docs/configuration.md lacks {_env_name(key)}"


def test_the_documentation_names_no_setting_that_does_not_exist() -> None:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    documented_keys = set()
    documented_env = set()
    for row in rows:
        first_cell = row.split("|")[1]
        documented_keys |= set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", first_cell))
        documented_env |= set(re.findall(r"`(DANGAN_[A-Z0-9_]+)`", row))
    assert documented_keys - {"data_dir"} <= set(ALL_KEYS)
    assert documented_env <= {_env_name(k) for k in ALL_KEYS} | {"DANGAN_CONFIG"}
    assert len(documented_keys) > 10


def test_the_defaults_put_everything_under_the_data_directory(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert settings.data_dir == data
    assert settings.database_url == f"sqlite:///{data / 'catalog.sqlite'}"
    assert settings.vault.primary.path == data / "vault" / "primary"
    assert settings.vault.replica.path == data / "vault" / "replica"
    assert settings.vault.keyring_path == data / "keyring"
    assert settings.index_dir == data / "index"
    assert settings.require_services is False


def test_the_settings_fixture_ignores_the_callers_environment(settings: Settings) -> None:
    # CI exports DANGAN_REQUIRE_SERVICES=1; the fixture must not let it (or anything) in.
    assert settings.server.port == 8080
    assert settings.require_services is False


def test_environment_variables_override_the_defaults(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_DATA_DIR", str(tmp_path / "elsewhere"))
    clean_env.setenv("DANGAN_SERVER__PORT", "9000")
    clean_env.setenv("DANGAN_OCR__LANGUAGES", "eng")
    clean_env.setenv("DANGAN_VAULT__REPLICA__PATH", str(tmp_path / "offsite"))

    s = load_settings()

    assert s.data_dir == tmp_path / "elsewhere"
    assert s.server.port == 9000
    assert s.ocr.languages == "eng"
    assert s.vault.replica.path == tmp_path / "offsite"
    assert s.vault.primary.path == tmp_path / "elsewhere" / "vault" / "primary"


def test_a_toml_file_named_by_dangan_config(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = _write(
        tmp_path / "dangan.toml",
        f'data_dir = "{tmp_path / "d"}"\n[server]\nport = 9100\n[worker]\nprocesses = 3\n',
    )
    clean_env.setenv("DANGAN_CONFIG", str(toml))

    s = load_settings()

    assert (s.data_dir, s.server.port, s.worker.processes) == (tmp_path / "d", 9100, 3)


def test_a_toml_file_given_to_load_settings(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = _write(
        tmp_path / "dangan.toml",
        '[database]\nurl = "postgresql://dangan:pw@db.example/dangan"\npool_size = 7\n',
    )

    s = load_settings(config_file=toml, data_dir=tmp_path)

    assert s.database_url == "postgresql://dangan:pw@db.example/dangan"
    assert s.database.pool_size == 7


def test_config_file_argument_beats_dangan_config(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_CONFIG", str(_write(tmp_path / "a.toml", "[server]\nport = 1111\n")))
    given = _write(tmp_path / "b.toml", "[server]\nport = 2222\n")

    assert load_settings(config_file=given, data_dir=tmp_path).server.port == 2222


def test_environment_beats_toml_key_by_key(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = _write(tmp_path / "dangan.toml", '[server]\nhost = "10.0.0.5"\nport = 9100\n')
    clean_env.setenv("DANGAN_SERVER__PORT", "9200")

    s = load_settings(config_file=toml, data_dir=tmp_path)

    assert s.server.port == 9200  # the environment wins...
    assert s.server.host == "10.0.0.5"  # ...without hiding the rest of the section


def test_the_command_line_beats_the_environment(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_DATA_DIR", str(tmp_path / "from-env"))

    assert load_settings(data_dir=tmp_path / "from-cli").data_dir == tmp_path / "from-cli"


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("DANGAN_VAULT__PRIMARY__KIND", "ftp", "vault.primary.kind"),
        ("DANGAN_SERVER__PORT", "eighty", "server.port"),
        ("DANGAN_SERVER__PORT", "70000", "server.port"),
        ("DANGAN_WORKER__LEASE_SECONDS", "1", "worker.lease_seconds"),
        ("DANGAN_DATABASE__POOL_SIZE", "0", "database.pool_size"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, key: str
) -> None:
    clean_env.setenv(variable, value)

    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir=tmp_path)

    message = str(raised.value)
    assert key in message
    assert "\n" not in message


def test_a_bad_value_in_toml_names_the_key(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = _write(tmp_path / "dangan.toml", '[ocr]\njobs = "many"\n')

    with pytest.raises(ConfigError, match=r"ocr\.jobs"):
        load_settings(config_file=toml, data_dir=tmp_path)


def test_an_unknown_key_is_refused_not_ignored(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = _write(tmp_path / "dangan.toml", "[server]\nprot = 9000\n")

    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings(config_file=toml, data_dir=tmp_path)


def test_a_missing_toml_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config_file=tmp_path / "nope.toml", data_dir=tmp_path)

    clean_env.setenv("DANGAN_CONFIG", str(tmp_path / "also-nope.toml"))
    with pytest.raises(ConfigError, match=r"also-nope\.toml"):
        load_settings(data_dir=tmp_path)


def test_a_toml_file_that_does_not_parse(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = _write(tmp_path / "dangan.toml", "[server\nport = \n")

    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=toml, data_dir=tmp_path)


def _s3_env(env: pytest.MonkeyPatch, store: str, **values: str) -> None:
    for name, value in values.items():
        env.setenv(f"DANGAN_VAULT__{store.upper()}__{name.upper()}", value)


def test_a_complete_s3_store_is_accepted(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _s3_env(
        clean_env,
        "primary",
        kind="s3",
        endpoint="minio-a.example:9000",
        access_key="dangan",
        secret_key="a-long-real-secret",
        secure="false",
    )

    s = load_settings(data_dir=tmp_path)

    store = s.vault.primary
    assert (store.kind, store.endpoint, store.bucket, store.secure) == (
        "s3",
        "minio-a.example:9000",
        "dangan",
        False,
    )
    assert store.secret_key is not None
    assert store.secret_key.get_secret_value() == "a-long-real-secret"
    assert "a-long-real-secret" not in repr(s)
    assert s.vault.replica.kind == "fs"


def test_an_s3_store_without_endpoint(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _s3_env(clean_env, "replica", kind="s3", access_key="dangan", secret_key="a-long-real-secret")

    with pytest.raises(ConfigError, match=r"vault\.replica.*endpoint"):
        load_settings(data_dir=tmp_path)


@pytest.mark.parametrize("secret", ["minioadmin", "changeme", "CHANGEME", ""])
def test_an_s3_store_with_a_placeholder_secret(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, secret: str
) -> None:
    _s3_env(
        clean_env,
        "primary",
        kind="s3",
        endpoint="minio-a.example:9000",
        access_key="dangan",
        secret_key=secret,
    )

    with pytest.raises(ConfigError, match=r"vault\.primary.*secret_key"):
        load_settings(data_dir=tmp_path)


def test_an_s3_store_without_keys(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _s3_env(clean_env, "primary", kind="s3", endpoint="minio-a.example:9000")

    with pytest.raises(ConfigError, match=r"vault\.primary.*access_key"):
        load_settings(data_dir=tmp_path)


def test_the_keyring_inside_a_vault_store(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DANGAN_VAULT__KEYRING_PATH", str(tmp_path / "vault" / "replica" / "keys"))

    with pytest.raises(ConfigError, match=r"vault\.keyring_path"):
        load_settings(data_dir=tmp_path)


def test_the_keyring_beside_the_stores_is_fine(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_VAULT__KEYRING_PATH", str(tmp_path / "vault" / "keyring"))

    assert load_settings(data_dir=tmp_path).vault.keyring_path == tmp_path / "vault" / "keyring"


def test_primary_and_replica_in_one_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DANGAN_VAULT__PRIMARY__PATH", str(tmp_path / "store"))
    clean_env.setenv("DANGAN_VAULT__REPLICA__PATH", str(tmp_path / "store"))

    with pytest.raises(ConfigError, match="two different directories"):
        load_settings(data_dir=tmp_path)


def test_primary_and_replica_in_one_bucket(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for store in ("primary", "replica"):
        _s3_env(
            clean_env,
            store,
            kind="s3",
            endpoint="minio.example:9000",
            access_key="dangan",
            secret_key="a-long-real-secret",
        )

    with pytest.raises(ConfigError, match="two different buckets"):
        load_settings(data_dir=tmp_path)

    clean_env.setenv("DANGAN_VAULT__REPLICA__BUCKET", "dangan-copy")
    assert load_settings(data_dir=tmp_path).vault.replica.bucket == "dangan-copy"
