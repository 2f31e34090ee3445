"""A fresh archive driven through ``dangan`` in-process, for the CLI's end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.cli import main

PASSWORD = "correct-horse-battery"


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


def fresh_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """``dangan init`` in ``tmp_path/data`` (admin ``root``, password :data:`PASSWORD` in
    ``tmp_path/pw``); then a function that runs ``dangan --data-dir D ARGS`` there."""
    data = tmp_path / "data"

    def _run(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["--data-dir", str(data), *args])
        captured = capsys.readouterr()
        return Result(int(exit_info.value.code or 0), captured.out, captured.err)

    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert _run("init", "--admin", "root", "--password-file", str(pw)).code == 0
    return _run
