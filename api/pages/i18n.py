"""The pages' languages: Chinese (zh-CN) by default, English on request.

Messages are written in English in the templates and the page modules (``_("Search")``) and
translated by gettext catalogs under ``api/locale/<locale>/LC_MESSAGES/*.po``. Every ``.po``
file of a locale is read and merged when the pages start (one file per area of the pages, so
they can be edited apart); nothing compiled is kept in the repository. English needs no
catalog: it is the messages themselves.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALE_DIR", "translations"]

LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LANGUAGE: Final = "zh-CN"
# The language's tag (``<html lang>``, the cookie) → its gettext locale, and its own name.
LANGUAGES: Final = {"zh-CN": ("zh_CN", "中文"), "en": ("en", "English")}


def merged_catalog(locale: str) -> Catalog:
    """Every ``.po`` file of ``locale`` as one catalog (a later file wins a duplicate)."""
    merged = Catalog(locale=locale)
    for po in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=locale):
                if message.id and message.string and not message.fuzzy:
                    merged.add(message.id, message.string)
    return merged


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The gettext translations for a language tag of :data:`LANGUAGES`."""
    locale = LANGUAGES[language][0]
    if not (LOCALE_DIR / locale).is_dir():
        return gettext.NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, merged_catalog(locale))
    buf.seek(0)
    return gettext.GNUTranslations(buf)
