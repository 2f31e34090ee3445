"""Where the team's scanned-records corpus lies: ``../shared/corpus/dev`` beside the checkout,
or ``DANGAN_CORPUS``. Tests that need a real scan call :func:`scan`; a missing corpus skips them
locally and fails them in CI (``DANGAN_REQUIRE_SERVICES=1``), like a missing service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DANGAN_CORPUS", ROOT.parent / "shared" / "corpus" / "dev"))


def scan(name: str = "IMG_3214.png") -> Path:
    """A real scan from the corpus."""
    path = CORPUS / name
    if not path.is_file():
        message = f"the scanned-records corpus is not at {CORPUS} (set DANGAN_CORPUS)"
        if os.environ.get("DANGAN_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
