"""The one settings object of dangan.

Built once by an entry point (``api/cli.py``, ``api/app.py``) from ``DANGAN_*`` environment
variables and an optional TOML file, then handed down as plain values: ``vault``, ``ocr`` and
``indexer`` never import this module. Every field is documented in ``docs/configuration.md``
(a test keeps the two in step). Never log a settings object: it holds secrets.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from dangan.errors import ConfigError

__all__ = [
    "BackupSettings",
    "CheckSettings",
    "CryptoSettings",
    "DatabaseSettings",
    "FixitySettings",
    "IntakeSettings",
    "OcrSettings",
    "ReviewSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "VaultSettings",
    "WorkerSettings",
    "load_settings",
]

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "minioadmin", "secret", "password"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    """One store of the vault: a local directory (``fs``) or an S3 bucket (``s3``)."""

    kind: Literal["fs", "s3"] = "fs"
    path: Path | None = None
    endpoint: str | None = None
    bucket: str = "dangan"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    secure: bool = True
    region: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> StoreSettings:
        if self.kind == "s3":
            if not self.endpoint:
                raise ValueError("an s3 store needs 'endpoint'")
            for name in ("access_key", "secret_key"):
                value = getattr(self, name)
                if value is None or value.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"an s3 store needs a real '{name}', not a placeholder")
        return self


class VaultSettings(_Section):
    """The two stores (dual-backup rule) and where the keyring lives."""

    primary: StoreSettings = Field(default_factory=StoreSettings)
    replica: StoreSettings = Field(default_factory=StoreSettings)
    keyring_path: Path | None = None


class CryptoSettings(_Section):
    """The algorithms new objects and new audit events are written with (国密 option).

    Each object records its cipher suite and each audit event its digest, so changing these
    rewrites nothing: old records keep theirs and verify as before (docs/vault-format.md,
    "Cipher suites").
    """

    digest: Literal["sha256", "sm3"] = Field(
        default="sha256",
        description="fixity digest of new objects and hash of new audit events; sm3 = GB/T 32905",
    )
    cipher: Literal["aes-256-gcm", "sm4-gcm"] = Field(
        default="aes-256-gcm",
        description="content cipher of new objects; sm4-gcm = GB/T 32907 in GCM mode",
    )


class DatabaseSettings(_Section):
    """The catalog database: SQLite under the data directory unless a URL is given."""

    url: SecretStr | None = None
    pool_size: int = Field(default=5, ge=1, le=100)


class IntakeSettings(_Section):
    """What an upload may be. The pixel limit of a page is ``ocr.max_image_pixels``."""

    max_bytes: int = Field(default=500 * 1024 * 1024, ge=1)
    max_pages: int = Field(default=200, ge=1)


class OcrSettings(_Section):
    """How scans are read."""

    engine: Literal["tesseract", "rapidocr"] = "rapidocr"
    languages: str = "chi_sim+eng"
    max_image_pixels: int = Field(default=200_000_000, ge=1_000_000)
    jobs: int = Field(default=0, ge=0, description="0 = one per core")


class QualitySettings(_Section):
    """The digitization quality gate at intake (docs/quality.md, DA/T 31-2017)."""

    min_dpi: float = Field(default=200.0, gt=0)
    max_skew: float = Field(default=3.0, ge=0.0)
    blank_below: float = Field(default=0.0003, ge=0.0, le=1.0)
    min_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    size_tolerance: float = Field(default=0.1, ge=0.0, le=1.0)
    seal_types: list[str] = Field(
        default_factory=lambda: [
            "处分决定",
            "奖励",
            "毕业审核",
            "学籍变更",
            "转学",
            "休学",
            "复学",
            "合同",
        ]
    )
    block_types: list[str] = Field(default_factory=list)


class ServerSettings(_Section):
    """Where ``dangan serve`` listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class WorkerSettings(_Section):
    """The job queue's workers."""

    processes: int = Field(default=0, ge=0, description="0 = one per core")
    lease_seconds: int = Field(default=300, ge=5)
    max_attempts: int = Field(default=5, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)
    in_server: bool = True


class FixitySettings(_Section):
    """The fixity cycle: every copy checked within a period, a share of them decrypted."""

    period_days: int = Field(default=30, ge=1)
    deep_share: float = Field(default=0.05, ge=0.0, le=1.0)
    interval_minutes: int = Field(default=60, ge=1)
    max_bytes_per_run: int = Field(default=4 * 1024**3, ge=1)


class BackupSettings(_Section):
    """Catalog backups into the vault (``dangan backup``, the ``backup.catalog`` job)."""

    keep: int = Field(default=7, ge=1, description="how many catalog backups to keep")
    pg_bin_dir: Path | None = Field(
        default=None, description="where pg_dump and pg_restore are; else PATH, else Debian's"
    )


class CheckSettings(_Section):
    """The four-property check (四性检测, docs/standards.md, DA/T 70-2018)."""

    required_fields: list[str] = Field(
        default_factory=lambda: ["title", "paper_location"],
        description="fields every record must fill in",
    )
    no_student_types: list[str] = Field(
        default_factory=lambda: ["会议纪要", "合同"],
        description="business types whose records name no student (no number or name needed)",
    )
    stale_temp_minutes: int = Field(
        default=60, ge=1, description="an intake temp directory older than this is left over"
    )
    interval_days: int = Field(
        default=7, ge=1, description="how often the whole archive is checked"
    )
    keep_reports: int = Field(default=12, ge=1, description="scheduled reports kept")


ReviewGateName = Literal["intake_check", "data_entry", "system_check", "final_review"]


def _every_gate() -> list[ReviewGateName]:
    return ["intake_check", "data_entry", "system_check", "final_review"]


class ReviewSettings(_Section):
    """The intake review's gates (docs/review.md): which gates each business type's records
    pass before they are accepted (归档)."""

    gates: list[ReviewGateName] = Field(
        default_factory=_every_gate, description="the gates a new record of any type passes"
    )
    type_gates: dict[str, list[ReviewGateName]] = Field(
        default_factory=dict,
        description="per business type, the gates its new records pass instead of `gates`",
    )


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``--config`` or ``DANGAN_CONFIG``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            try:
                with path.open("rb") as fh:
                    self._data = tomllib.load(fh)
            except FileNotFoundError as exc:
                raise ConfigError(f"configuration file not found: {path}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """All of dangan's settings. Use :func:`load_settings` to build one."""

    model_config = SettingsConfigDict(
        env_prefix="DANGAN_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("dangan-data")
    keyring: SecretStr | None = Field(
        default=None, description="base64 keyring; overrides vault.keyring_path"
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    crypto: CryptoSettings = Field(default_factory=CryptoSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    fixity: FixitySettings = Field(default_factory=FixitySettings)
    check: CheckSettings = Field(default_factory=CheckSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    require_services: bool = False

    _config_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("DANGAN_CONFIG")
        toml = _TomlSource(settings_cls, cls._config_file or (Path(config) if config else None))
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # The embedded default: everything under one data directory.
        self.data_dir = self.data_dir.expanduser().absolute()
        if self.vault.primary.kind == "fs" and self.vault.primary.path is None:
            self.vault.primary.path = self.data_dir / "vault" / "primary"
        if self.vault.replica.kind == "fs" and self.vault.replica.path is None:
            self.vault.replica.path = self.data_dir / "vault" / "replica"
        if self.vault.keyring_path is None:
            self.vault.keyring_path = self.data_dir / "keyring"
        self.vault.keyring_path = self.vault.keyring_path.expanduser().absolute()
        _refuse_shared_stores(self.vault)
        _refuse_keyring_inside_stores(self.vault)
        return self

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the catalog (a secret: never log it)."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'catalog.sqlite'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


def _refuse_shared_stores(vault: VaultSettings) -> None:
    p, r = vault.primary, vault.replica
    if p.kind == r.kind == "fs" and p.path and r.path and p.path.absolute() == r.path.absolute():
        raise ValueError("vault.primary and vault.replica must be two different directories")
    if p.kind == r.kind == "s3" and (p.endpoint, p.bucket) == (r.endpoint, r.bucket):
        raise ValueError("vault.primary and vault.replica must be two different buckets")


def _refuse_keyring_inside_stores(vault: VaultSettings) -> None:
    """The keyring must never sit inside the data it protects."""
    assert vault.keyring_path is not None  # noqa: S101 - filled in just before
    for store in (vault.primary, vault.replica):
        inside = store.path is not None and vault.keyring_path.is_relative_to(
            store.path.expanduser().absolute()
        )
        if store.kind == "fs" and inside:
            raise ValueError("vault.keyring_path must not lie inside a vault store")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise :class:`ConfigError` with one line naming the bad key.

    :param config_file: a TOML file; else ``DANGAN_CONFIG``; else none.
    :param overrides: values from the command line (e.g. ``data_dir``).
    """
    Settings._config_file = config_file
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"configuration: {key}: {first['msg']}") from None
    finally:
        Settings._config_file = None
