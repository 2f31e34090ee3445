"""Upload names made safe to keep and to show.

The name a client sends is a claim, not a path: only its last part is kept (after ``/`` or
``\\``), without control or format characters (NUL, ESC, the right-to-left override that
makes ``gnp.exe`` read as ``exe.png``), with runs of whitespace made one space, without
leading dots (no hidden files, no ``..``), and short enough for the catalog's column. The
name is never used to decide the file's type (the bytes decide) and is never logged.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_NAME_BYTES", "MAX_NAME_CHARS", "sanitize_upload_name"]

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 255  # the catalog column, and most file systems' limit
_MAX_EXTENSION = 16

# What a sniffed media type is called when the client's name says nothing usable.
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
}


# A terminal escape sequence (colours, cursor moves): dropped whole, not just its ESC.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_DROPPED = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))


def _visible(name: str) -> str:
    # Whitespace (tabs and newlines included) becomes one space; then the rest of Cc (NUL,
    # ESC, ...), Cf (RTL/LTR overrides and isolates, zero-width joiners, BOM), Cs (lone
    # surrogates) and Co/Cn (private use, unassigned: no scanner writes them) are dropped.
    spaced = " ".join(_ESCAPE_SEQUENCE.sub("", name).split())
    return "".join(ch for ch in spaced if unicodedata.category(ch) not in _DROPPED)


def _fits(text: str, chars: int, max_bytes: int) -> str:
    text = text[:chars]
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


def sanitize_upload_name(
    name: str | None, media_type: str | None = None, *, max_chars: int = MAX_NAME_CHARS
) -> str:
    """A safe display name for an upload: a last path part, printable, short.

    The extension is kept when shortening (``扫描…扫描.png`` stays ``….png``); a name with
    nothing left becomes ``upload`` plus the extension of ``media_type``.

    :param name: the name the client sent (``None`` when it sent none).
    :param media_type: the sniffed type, for the fallback name's extension.
    :param max_chars: the most characters to keep (never more than 255 UTF-8 bytes).
    """
    raw = name or ""
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    clean = _visible(unicodedata.normalize("NFC", last)).lstrip(". ").rstrip(" ")
    stem, dot, ext = clean.rpartition(".")
    if not dot or not stem or len(ext) > _MAX_EXTENSION or " " in ext:
        stem, ext = clean, ""
    else:
        ext = "." + ext
    if not stem.strip(" ."):
        stem = "upload"
        ext = ext or _EXTENSIONS.get(media_type or "", "")
    room_chars = max(1, max_chars - len(ext))
    room_bytes = MAX_NAME_BYTES - len(ext.encode("utf-8"))
    stem = _fits(stem, room_chars, room_bytes).rstrip(" .") or "upload"
    return stem + ext
