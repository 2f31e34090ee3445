"""What every bench's closing JSON line carries besides its figures.

Not a bench itself; the benches import it (``bench/`` is on ``sys.path`` when one runs).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The short commit the bench ran on, or ``""`` outside a git checkout."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
