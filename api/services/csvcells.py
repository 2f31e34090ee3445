"""CSV cells that a spreadsheet opens as text: a cell starting with ``=``, ``+``, ``-``, ``@``
or a control character would run as a formula (CSV injection), so it gets a leading ``'``."""

from __future__ import annotations

__all__ = ["safe_cell"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
