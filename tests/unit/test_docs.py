"""Documentation that is generated from the code must match it."""

from __future__ import annotations

from pathlib import Path

from api.cli_reference import render_cli_reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    expected = render_cli_reference()
    actual = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is stale: python -m api.cli_reference > docs/cli.md"


def test_every_error_class_is_documented() -> None:
    import dangan.errors as errors

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.DanganError) and name != "DanganError":
            assert f"`{name}`" in text, f"{name} is missing from docs/architecture.md"
