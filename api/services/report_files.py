"""What every report kept as a file shares: the standalone templates (their style inline,
nothing fetched, to open anywhere), and how a report file is named and typed when it is
handed out."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["FILE_TYPES", "attachment", "file_templates"]

FILE_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}

file_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def attachment(fmt: str, stem: str) -> tuple[str, dict[str, str]]:
    """The media type and headers that hand out ``<stem>.<fmt>`` as a download."""
    return FILE_TYPES[fmt], {"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'}
