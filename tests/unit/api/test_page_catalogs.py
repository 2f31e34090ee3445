"""The pages' translations are complete: every message the templates and page modules use has
a Chinese translation with the same placeholders, every state has a label, and every template
compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract

from api.pages.base import _environment
from api.pages.i18n import LANGUAGES, merged_catalog
from api.pages.labels import LABELLED, LABELS

API = Path(__file__).resolve().parents[3] / "api"
_JINJA_OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "newstyle_gettext": "true",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _messages() -> dict[str, str]:
    """Every message id the pages use → the file it was found in."""
    found: dict[str, str] = {}
    sources = [
        *((p, "jinja2.ext:babel_extract", _JINJA_OPTIONS) for p in API.glob("templates/*.html")),
        *((p, "python", {}) for p in API.glob("pages/*.py")),
    ]
    for path, method, options in sources:
        with path.open("rb") as fh:
            for _, message, _, _ in extract(method, fh, options=options):
                key = message if isinstance(message, str) else message[0]
                found.setdefault(key, path.name)
    return found


def test_the_pages_use_messages() -> None:
    # The extraction itself works (a broken extractor would make the next test vacuous).
    messages = _messages()
    assert len(messages) > 50
    assert "Sign in" in messages
    assert "archived" in messages  # from the labels module's N_ marks


def test_every_message_has_a_chinese_translation_with_its_placeholders() -> None:
    catalog = merged_catalog("zh_CN")
    missing = []
    wrong = []
    for message, where in sorted(_messages().items()):
        entry = catalog.get(message)
        if entry is None or not entry.string:
            missing.append(f"{where}: {message!r}")
        elif set(_PLACEHOLDER.findall(message)) != set(_PLACEHOLDER.findall(str(entry.string))):
            wrong.append(f"{where}: {message!r} → {entry.string!r}")
    assert not missing, "untranslated:\n" + "\n".join(missing)
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


@pytest.mark.parametrize(("kind", "enum"), sorted(LABELLED.items()))
def test_every_state_has_a_label(kind: str, enum: type) -> None:
    assert {str(v.value) for v in enum} <= set(LABELS[kind])


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
@pytest.mark.parametrize("name", sorted(p.name for p in API.glob("templates/*.html")))
def test_every_template_compiles(lang: str, name: str) -> None:
    assert _environment(lang).get_template(name) is not None


def test_no_translation_has_a_bare_percent_sign() -> None:
    # Jinja's newstyle gettext formats every translation with %: a lone "%" (as in "90%")
    # breaks the page at render time. A literal percent sign is written "%%".
    catalog = merged_catalog("zh_CN")
    bare = [
        f"{message!r} → {entry.string!r}"
        for message in _messages()
        if (entry := catalog.get(message)) is not None
        and "%" in re.sub(r"%\(\w+\)s|%%", "", str(entry.string))
    ]
    assert not bare, "a bare % (write %%):\n" + "\n".join(bare)
