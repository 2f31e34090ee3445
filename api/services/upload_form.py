"""Receiving an upload form: a ``multipart/form-data`` body parsed as it arrives, each file
part streamed straight into intake's private directory.

Nothing of an upload is spooled anywhere else (no anonymous temporary file in the system's
temporary directory, no whole part in memory): a file part's bytes go from the request, in the
pieces the server hands over, through :class:`api.services.intake.UploadReceiver`, which hashes
and counts them and stops keeping them once the part is over ``intake.max_bytes`` or its first
bytes show it is no scan (the rest of that part is read and dropped, so the other files still
arrive). The form's other fields may come before or after the files; they are kept only when
the caller named them, each bounded in size, and the number of parts and of files is bounded
too. The caller removes the private directory afterwards, whatever happened.

:func:`receive_form` reads an ASGI body (an async iterator of bytes) and does the parsing and
the writing in worker threads, a batch of about :data:`vault.CHUNK` bytes at a time, so the
event loop never waits on the disk; :class:`FormReceiver` is the synchronous parser itself.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool

from api.services.intake import RefusedUpload, Upload, UploadReceiver
from dangan.errors import InvalidInputError
from vault import CHUNK

__all__ = [
    "MAX_FIELD_BYTES",
    "MAX_FILES",
    "MAX_PARTS",
    "FormReceiver",
    "ReceivedFile",
    "ReceivedForm",
    "receive_form",
]

MAX_FILES: Final = 100
"""The most files one upload may carry."""
MAX_PARTS: Final = 200
"""The most parts (files and fields, known or not) one body may have."""
MAX_FIELD_BYTES: Final = 4096
"""The longest value of a field that is not a file, in bytes (and of a url-encoded body, 16
times that)."""

_FORM: Final = b"multipart/form-data"
_URLENCODED: Final = b"application/x-www-form-urlencoded"


@dataclass(frozen=True)
class ReceivedFile:
    """One file part: received whole into the private directory, or refused on the way; and
    the name the client gave it (``None`` when it gave none; kept sanitised, never logged)."""

    upload: Upload | RefusedUpload
    name: str | None


@dataclass(frozen=True)
class ReceivedForm:
    """A whole form: the named fields sent (the last value of each), and the files in order."""

    fields: dict[str, str]
    files: tuple[ReceivedFile, ...]


def _decode(data: bytes, charset: str) -> str:
    # As Starlette does: the declared charset (UTF-8 by default), else Latin-1, never an error.
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        return data.decode("latin-1")


class FormReceiver:
    """A ``multipart/form-data`` (or url-encoded, which has no files) body parser that is fed
    the body piece by piece; blocking (it writes files), so call it off the event loop.

    :param content_type: the request's ``Content-Type`` header.
    :param directory: the private directory (mode 0700) the files go to; the caller removes it.
    :param fields: the names of the fields to keep; other fields are read and dropped.
    :param files_field: the name of the file parts; other file parts are read and dropped.
    :param max_bytes: the largest file kept (``intake.max_bytes``).
    :raises InvalidInputError: the content type is neither form type, or has no boundary.
    """

    def __init__(
        self,
        content_type: str,
        directory: Path,
        *,
        fields: Collection[str],
        files_field: str = "files",
        max_bytes: int,
        max_files: int = MAX_FILES,
        max_parts: int = MAX_PARTS,
        max_field_bytes: int = MAX_FIELD_BYTES,
    ) -> None:
        self.directory = directory
        self.wanted = frozenset(fields)
        self.files_field = files_field
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.max_parts = max_parts
        self.max_field_bytes = max_field_bytes
        self.fields: dict[str, str] = {}
        self.files: list[ReceivedFile] = []
        self._parts = 0
        # The part being read: its headers so far, then what it is.
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._receiver: UploadReceiver | None = None
        self._refusal: InvalidInputError | None = None
        self._upload_name: str | None = None
        self._urlencoded = bytearray()  # the whole body, when it is url-encoded
        self._parser: MultipartParser | None = None  # None when it is url-encoded

        kind, options = parse_options_header(content_type)
        charset = options.get(b"charset", b"utf-8").decode("latin-1")
        try:
            self._charset = codecs.lookup(charset).name
        except LookupError:
            self._charset = "latin-1"
        if kind == _URLENCODED:
            return
        if kind != _FORM:
            raise InvalidInputError(
                "invalid request: an upload is a multipart/form-data body (its files and fields)"
            )
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidInputError("invalid request: the multipart body has no boundary")
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                },
            )
        except FormParserError:
            raise InvalidInputError("invalid request: the multipart boundary is too long") from None

    def feed(self, data: bytes) -> None:
        """Parse the next piece of the body, writing file bytes as they come.

        :raises InvalidInputError: the body is malformed, or over a limit (parts, files, a
            field's size); stop reading it then.
        :raises StoreUnavailableError: the private directory has no room.
        """
        if self._parser is None:
            self._urlencoded += data
            if len(self._urlencoded) > 16 * self.max_field_bytes:
                raise InvalidInputError("invalid request: the form is too large")
            return
        try:
            self._parser.write(data)
        except FormParserError:
            raise InvalidInputError("invalid request: the multipart body is malformed") from None

    def finish(self) -> ReceivedForm:
        """The form, once the whole body was fed.

        :raises InvalidInputError: the body ended before its closing boundary.
        """
        if self._parser is None:
            text = _decode(bytes(self._urlencoded), self._charset)
            for name, value in parse_qsl(text, keep_blank_values=True):
                if name in self.wanted:
                    self._keep(name, value.encode("utf-8"))
        elif self._parser.state != MultipartState.END:
            raise InvalidInputError("invalid request: the multipart body ended early")
        return ReceivedForm(dict(self.fields), tuple(self.files))

    def close(self) -> None:
        """Close the file being written, if any (after a failure; the directory stays the
        caller's to remove)."""
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    # --- the parser's callbacks ---------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.max_parts:
            raise InvalidInputError(
                f"invalid request: too many parts in the form: at most {self.max_parts}"
            )
        self._disposition = b""
        self._field = None
        self._value = bytearray()
        self._refusal = None
        self._upload_name = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidInputError("invalid request: a part of the form has no name")
        name = _decode(options[b"name"], self._charset)
        if name == self.files_field:
            if len(self.files) >= self.max_files:
                raise InvalidInputError(
                    f"invalid request: too many files in one upload: at most {self.max_files}"
                )
            filename = options.get(b"filename")
            self._upload_name = _decode(filename, self._charset) if filename else None
            path = self.directory / f"upload-{len(self.files)}"
            self._receiver = UploadReceiver(path, max_bytes=self.max_bytes)
        elif name in self.wanted and b"filename" not in options:
            self._field = name

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._receiver is not None:
            if self._refusal is None:
                try:
                    self._receiver.write(data[start:end])
                except InvalidInputError as exc:  # too large, or no scan: drop the rest
                    self._receiver.discard()
                    self._refusal = exc
        elif self._field is not None:
            self._value += data[start:end]
            if len(self._value) > self.max_field_bytes:
                raise InvalidInputError(
                    f"invalid request: {self._field}: over {self.max_field_bytes} bytes"
                )

    def _on_part_end(self) -> None:
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            upload: Upload | RefusedUpload
            if self._refusal is not None:
                upload = RefusedUpload(self._refusal)
            else:
                try:
                    upload = receiver.finish()
                except InvalidInputError as exc:  # empty, or a short file that is no scan
                    receiver.discard()
                    upload = RefusedUpload(exc)
            self.files.append(ReceivedFile(upload, self._upload_name))
        elif self._field is not None:
            self._keep(self._field, bytes(self._value))

    def _keep(self, name: str, value: bytes) -> None:
        if len(value) > self.max_field_bytes:
            raise InvalidInputError(f"invalid request: {name}: over {self.max_field_bytes} bytes")
        self.fields[name] = _decode(value, self._charset)


async def receive_form(
    content_type: str,
    body: AsyncIterator[bytes],
    directory: Path,
    *,
    fields: Collection[str],
    max_bytes: int,
) -> ReceivedForm:
    """Receive a form from an ASGI body into ``directory`` (see :class:`FormReceiver`).

    The body is parsed in worker threads, about :data:`vault.CHUNK` bytes at a time, so at
    most that much of it is held in memory.

    :raises InvalidInputError: not a form, malformed, or over a limit.
    :raises StoreUnavailableError: the private directory has no room.
    """
    receiver = FormReceiver(content_type, directory, fields=fields, max_bytes=max_bytes)
    try:
        batch: list[bytes] = []
        size = 0
        async for piece in body:
            batch.append(piece)
            size += len(piece)
            if size >= CHUNK:
                await run_in_threadpool(receiver.feed, b"".join(batch))
                batch.clear()
                size = 0
        if batch:
            await run_in_threadpool(receiver.feed, b"".join(batch))
        return receiver.finish()
    finally:
        receiver.close()
