"""Two uploads of the same scan at the same moment make one record, on SQLite and PostgreSQL:
the second waits for the first's transaction under the content's lock, then is refused, and
its copies are deleted."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from api.services import Runtime, ingest
from catalog import NewRecord
from dangan.errors import ConflictError

TYPE = "新生入学"
ROUNDS = 4


@pytest.fixture
def rt(runtime_each_backend: Runtime) -> Runtime:
    return runtime_each_backend


def _scan(path: Path, shade: int) -> Path:
    Image.new("L", (64, 64), shade).save(path)
    return path


def _twins(rt: Runtime, path: Path) -> tuple[list[str], list[ConflictError]]:
    """Upload ``path`` from two threads released at the same moment."""
    start = threading.Barrier(2)
    codes: list[str] = []
    refused: list[ConflictError] = []
    other: list[BaseException] = []

    def upload() -> None:
        start.wait()
        try:
            codes.append(ingest(rt, path, NewRecord(TYPE, 2023), actor="system").archive_code)
        except ConflictError as exc:
            refused.append(exc)
        except BaseException as exc:  # noqa: BLE001 - collected for the main thread
            other.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    return codes, refused


def test_twin_uploads_at_once_make_one_record(rt: Runtime, tmp_path: Path) -> None:
    for shade in range(ROUNDS):
        codes, refused = _twins(rt, _scan(tmp_path / f"scan{shade}.png", shade))
        assert len(codes) == 1
        assert len(refused) == 1
        assert codes[0] in refused[0].message
    # the refused twin's copies are gone: one original per round
    stores = [rt.settings.vault.primary.path, rt.settings.vault.replica.path]
    for root in stores:
        assert root is not None
        assert len([p for p in root.rglob("*") if p.is_file()]) == ROUNDS
