"""The transfer package's format (docs/transfer.md): the names of its files, and reading one
back — ``transfer.json`` and each record's ``metadata.json`` and OCR text — checked for what
the bag itself can tell. Writing is :mod:`api.services.transfer_records`; the digests are
:mod:`api.services.bags`'s. Never logs; metadata holds names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog import PageState, SecurityClass
from dangan.errors import CorruptDataError, InvalidInputError
from ocr.inspect import sniff_media_type
from vault import CHUNK

__all__ = [
    "FORMAT_VERSION",
    "MEDIA_EXTENSIONS",
    "PACKAGE_FORMAT",
    "RECORD_FORMAT",
    "FileEntry",
    "PackageDoc",
    "PlannedRecord",
    "RecordDoc",
    "ocr_file",
    "read_package",
]

PACKAGE_FORMAT: Final = "dangan-transfer"
RECORD_FORMAT: Final = "dangan-transfer-record"
FORMAT_VERSION: Final = 1
MEDIA_EXTENSIONS: Final = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/tiff": "tif",
}


def ocr_file(number: int) -> str:
    """A page's OCR text file in a record's directory: ``ocr/0001.txt`` for page 1."""
    return f"ocr/{number:04d}.txt"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileEntry(_Model):
    file: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class _Original(FileEntry):
    media_type: str
    upload_name: str | None = None


class _Page(_Model):
    number: int = Field(ge=1)
    state: PageState
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    skew: float | None = None
    confidence: float | None = None
    engine: str | None = Field(default=None, max_length=16)
    needs_review: bool = False
    ocr_text: str | None = None


class RecordDoc(_Model):
    """``metadata.json`` of one record, as ``api.services.transfer`` writes it."""

    format: Literal["dangan-transfer-record"]
    version: int
    archive_code: str = Field(min_length=1, max_length=64)
    year: int
    business_type: str
    title: str = ""
    student_no: str | None = None
    student_name: str | None = None
    student_class: str | None = None
    security_class: SecurityClass
    paper_location: str | None = None
    retention: str
    created_at: dt.datetime
    processed_at: dt.datetime | None = None
    needs_review: bool = False
    original: _Original
    access_copy: FileEntry | None = None
    pages: list[_Page]


class PackageDoc(_Model):
    format: Literal["dangan-transfer"]
    version: int
    export_id: str = Field(min_length=1, max_length=64)
    records: list[str]


@dataclass(frozen=True)
class PlannedRecord:
    doc: RecordDoc
    directory: Path
    texts: list[str | None]  # each page's OCR text, None for a page that had none


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"the bag has no {what}: not a dangan transfer package") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError(f"{what} is not JSON") from None


def _version_ok(version: int, what: str) -> None:
    if version != FORMAT_VERSION:
        raise InvalidInputError(f"{what} is version {version}; this dangan reads version 1")


def read_package(data: Path) -> tuple[PackageDoc, list[PlannedRecord]]:
    """Every record of the bag, its metadata and its pages' text, checked for what the bag
    itself can tell (the digests are checked already)."""
    try:
        package = PackageDoc.model_validate(_read_json(data / "transfer.json", "transfer.json"))
    except ValidationError as exc:
        raise InvalidInputError(f"transfer.json: {_first_error(exc)}") from None
    _version_ok(package.version, "the package")
    listed = set(package.records)
    on_disk = (
        {p.name for p in (data / "records").iterdir()} if (data / "records").is_dir() else set()
    )
    if listed != on_disk or len(listed) != len(package.records):
        raise CorruptDataError("transfer.json and the records' directories do not agree")
    planned: list[PlannedRecord] = []
    for code in package.records:
        directory = data / "records" / code
        where = f"records/{code}/metadata.json"
        try:
            doc = RecordDoc.model_validate(_read_json(directory / "metadata.json", where))
        except ValidationError as exc:
            raise InvalidInputError(f"{where}: {_first_error(exc)}") from None
        _version_ok(doc.version, where)
        if doc.archive_code != code:
            raise CorruptDataError(f"{where} names another archive code")
        if [p.number for p in doc.pages] != list(range(1, len(doc.pages) + 1)):
            raise InvalidInputError(f"{where}: the pages are not numbered 1, 2, 3, ...")
        _check_file(directory, doc.original, where)
        if MEDIA_EXTENSIONS.get(doc.original.media_type) is None:
            raise InvalidInputError(f"{where}: the original is no scan dangan keeps")
        with (directory / doc.original.file).open("rb") as fh:
            head = fh.read(512)
        if sniff_media_type(head) != doc.original.media_type:
            raise CorruptDataError(f"records/{code}/{doc.original.file} is not what it says")
        if doc.access_copy is not None:
            _check_file(directory, doc.access_copy, where)
        texts: list[str | None] = []
        for page in doc.pages:
            if page.ocr_text is None:
                texts.append(None)
                continue
            if page.ocr_text != ocr_file(page.number):
                raise InvalidInputError(f"{where}: page {page.number}'s text is misnamed")
            try:
                texts.append((directory / page.ocr_text).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise CorruptDataError(f"records/{code}/{page.ocr_text} is missing") from None
            except UnicodeDecodeError:
                raise InvalidInputError(f"records/{code}/{page.ocr_text} is not UTF-8") from None
        planned.append(PlannedRecord(doc, directory, texts))
    return package, planned


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _check_file(directory: Path, entry: FileEntry, where: str) -> None:
    """The file a metadata entry names is the one it describes (its size and SHA-256)."""
    path = directory / entry.file
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as fh:
            while piece := fh.read(CHUNK):
                digest.update(piece)
                size += len(piece)
    except FileNotFoundError:
        raise CorruptDataError(f"{where} names {entry.file}, which is not in the bag") from None
    if size != entry.size or not hmac.compare_digest(digest.hexdigest(), entry.sha256):
        raise CorruptDataError(f"{directory.name}/{entry.file} differs from {where}")
