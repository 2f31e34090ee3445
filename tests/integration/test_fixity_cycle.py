"""The fixity cycle against faults produced for real in fs stores: a flipped bit, a truncated
copy, a deleted copy in either store, a store out of reach. Each is found (every one), repaired
when a good copy is left, and when none is left the object is marked damaged and never served.
Also: the cycle's throttle and order, ``dangan verify``'s report, and the replication sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import cli
from api.services import Runtime, ingest, initialize
from api.services.fixity_cycle import FixityCyclePayload, run_cycle_slice, verify_report
from api.services.reading import open_original
from api.services.replication import ReplicationPayload, replicate_slice
from catalog import (
    CheckResult,
    CopyState,
    NewRecord,
    ObjectRole,
    RecordStatus,
    get_object,
    get_record,
    list_events,
    objects_of_record,
)
from dangan.config import load_settings
from dangan.errors import CorruptDataError
from tests.corpus import CORPUS, scan

SCAN = CORPUS / "IMG_3214.png"
TYPE = "新生入学"


@pytest.fixture
def rt(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Runtime]:
    scan(SCAN.name)
    clean_env.setenv("DANGAN_FIXITY__DEEP_SHARE", "0")
    runtime = Runtime(load_settings(data_dir=tmp_path / "data"))
    initialize(runtime, admin="root", password="correct-horse-battery")
    yield runtime
    runtime.close()


def _ingest(rt: Runtime, year: int = 2023) -> tuple[str, str]:
    record = ingest(rt, SCAN, NewRecord(business_type=TYPE, year=year), actor="system", force=True)
    with rt.db.read() as s:
        [original] = [o for o in objects_of_record(s, record.id) if o.role is ObjectRole.original]
    return record.archive_code, original.id


def _copy_path(rt: Runtime, store: str, object_id: str) -> Path:
    root = rt.settings.data_dir / "vault" / store
    return root / object_id[:2] / object_id[2:4] / object_id


def _damage(path: Path, fault: str) -> None:
    if fault == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif fault == "truncate":
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) - 100])
    else:
        path.unlink()


def _cycle(rt: Runtime, job_id: int = 1) -> dict[str, int]:
    report = run_cycle_slice(rt, FixityCyclePayload(), job_id=job_id, actor="test")
    return report.counts()


@pytest.mark.parametrize("store", ["primary", "replica"])
@pytest.mark.parametrize("fault", ["flip", "truncate", "delete"])
def test_a_fault_in_one_store_is_found_and_repaired(rt: Runtime, store: str, fault: str) -> None:
    code, object_id = _ingest(rt)
    path = _copy_path(rt, store, object_id)
    _damage(path, fault)

    counts = _cycle(rt)
    assert counts["checked"] == 2
    assert counts["repaired"] == 1
    assert counts["damaged"] == 0
    other = "replica" if store == "primary" else "primary"
    assert path.read_bytes() == _copy_path(rt, other, object_id).read_bytes()
    with rt.db.read() as s:
        obj = get_object(s, object_id)
        events = [e.action for e in list_events(s, limit=1000)]
    assert {c.state for c in obj.copies} == {CopyState.ok}
    assert obj.copy_in(store) is not None
    assert obj.copy_in(store).check_result is CheckResult.repaired  # type: ignore[union-attr]
    assert ("copy.missing" if fault == "delete" else "copy.bad") in events
    assert verify_report(rt, deep=True).problems == []
    assert b"".join(open_original(rt, code, actor="test").chunks) == SCAN.read_bytes()


@pytest.mark.parametrize("faults", [("flip", "delete"), ("truncate", "flip"), ("delete", "delete")])
def test_no_good_copy_left_is_damaged_and_never_served(
    rt: Runtime, faults: tuple[str, str]
) -> None:
    code, object_id = _ingest(rt)
    for store, fault in zip(("primary", "replica"), faults, strict=True):
        _damage(_copy_path(rt, store, object_id), fault)

    counts = _cycle(rt)
    assert counts["repaired"] == 0
    assert counts["damaged"] == 1
    assert counts["bad"] + counts["missing"] == 2
    with rt.db.read() as s:
        assert get_object(s, object_id).is_damaged
        assert get_record(s, code).status is RecordStatus.damaged
    with pytest.raises(CorruptDataError, match="damaged"):
        open_original(rt, code, actor="test")
    with rt.db.read() as s:
        actions = [e.action for e in list_events(s, limit=1000)]
    assert "object.damaged" in actions
    assert "record.read_failed" in actions


def test_a_damaged_object_is_not_served_even_if_a_store_turns_good_unchecked(rt: Runtime) -> None:
    code, object_id = _ingest(rt)
    saved = _copy_path(rt, "primary", object_id).read_bytes()
    for store in ("primary", "replica"):
        _damage(_copy_path(rt, store, object_id), "flip")
    _cycle(rt)
    _copy_path(rt, "primary", object_id).write_bytes(saved)  # restored from a backup
    with pytest.raises(CorruptDataError):
        open_original(rt, code, actor="test")
    # The next check finds the good copy, repairs the other, and the record reads again.
    counts = verify_report(rt, repair=True).counts()
    assert counts["repaired"] == 1
    with rt.db.read() as s:
        assert not get_object(s, object_id).is_damaged
        assert get_record(s, code).status is not RecordStatus.damaged
    assert b"".join(open_original(rt, code, actor="test").chunks) == SCAN.read_bytes()


def test_a_store_out_of_reach_is_reported_and_marks_nothing(rt: Runtime) -> None:
    _code, object_id = _ingest(rt)
    replica = rt.settings.data_dir / "vault" / "replica"
    away = replica.with_name("replica-unmounted")
    replica.rename(away)
    try:
        counts = _cycle(rt)
    finally:
        away.rename(replica)
    assert counts["unreachable"] == 1
    assert counts["ok"] == 1
    with rt.db.read() as s:
        copy = get_object(s, object_id).copy_in("replica")
    assert copy is not None
    assert copy.state is CopyState.ok
    assert copy.check_result is CheckResult.unreachable
    assert copy.checked_at is None  # still due: checked first once the store is back
    counts = _cycle(rt, job_id=2)
    assert counts["ok"] >= 1
    with rt.db.read() as s:
        assert get_object(s, object_id).copy_in("replica").checked_at is not None  # type: ignore[union-attr]


def test_every_fault_is_found_across_many_objects(rt: Runtime) -> None:
    """Six objects, a different fault in each (both stores), all found by one cycle."""
    made = [_ingest(rt, 2000 + n)[1] for n in range(6)]
    faults = [(s, f) for s in ("primary", "replica") for f in ("flip", "truncate", "delete")]
    for object_id, (store, fault) in zip(made, faults, strict=True):
        _damage(_copy_path(rt, store, object_id), fault)
    counts = _cycle(rt)
    assert counts["checked"] == 12
    assert counts["repaired"] == 6
    assert verify_report(rt, deep=True).counts()["ok"] == 12


def test_the_throttle_and_the_order(clean_env: pytest.MonkeyPatch, rt: Runtime) -> None:
    first = _ingest(rt, 2001)[1]
    second = _ingest(rt, 2002)[1]
    clean_env.setenv("DANGAN_FIXITY__MAX_BYTES_PER_RUN", "1")
    small = Runtime(load_settings(data_dir=rt.settings.data_dir))
    try:
        checked = []
        for job in range(1, 5):
            assert run_cycle_slice(small, FixityCyclePayload(), job_id=job, actor="t").checked == 1
            with small.db.read() as s:
                for oid in (first, second):
                    for c in get_object(s, oid).copies:
                        if c.checked_at is not None and (oid, c.store) not in checked:
                            checked.append((oid, c.store))
        # Never-checked copies first, one per run (the throttle), each once.
        assert len(checked) == 4
    finally:
        small.close()


def test_verify_reports_counts_and_repairs_on_request(rt: Runtime) -> None:
    _code, object_id = _ingest(rt)
    _damage(_copy_path(rt, "replica", object_id), "delete")
    report = verify_report(rt)
    assert (report.checked, report.ok, report.missing, report.repaired) == (2, 1, 1, 0)
    assert [p.kind for p in report.problems] == ["missing"]
    report = verify_report(rt, repair=True)
    assert (report.ok, report.repaired, report.problems) == (1, 1, [])
    doc = verify_report(rt, deep=True).to_json()
    assert doc["checked"] == doc["ok"] == doc["deep"] == 2


def test_replication_writes_what_a_store_missed(rt: Runtime) -> None:
    replica = rt.settings.data_dir / "vault" / "replica"
    away = replica.with_name("replica-down")
    replica.rename(away)
    try:
        code, object_id = _ingest(rt)
    finally:
        away.rename(replica)
    with rt.db.read() as s:
        assert get_record(s, code).status is RecordStatus.under_replicated
    tally = replicate_slice(rt, ReplicationPayload(), job_id=1, actor="test")
    assert tally["restored"] == 1
    assert _copy_path(rt, "replica", object_id).exists()
    with rt.db.read() as s:
        assert get_record(s, code).status is not RecordStatus.under_replicated


def test_the_cli_reports_as_json_and_shows_the_schedule(rt: Runtime) -> None:
    _code, object_id = _ingest(rt)
    _damage(_copy_path(rt, "replica", object_id), "truncate")
    data = ["--data-dir", str(rt.settings.data_dir)]
    runner = CliRunner()
    found = runner.invoke(cli, [*data, "verify", "--json"])
    assert found.exit_code == 1, found.output
    doc = json.loads(found.stdout)
    assert (doc["checked"], doc["ok"], doc["bad"], doc["repaired"]) == (2, 1, 1, 0)
    assert doc["problems"][0]["store"] == "replica"
    fixed = runner.invoke(cli, [*data, "verify", "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "1 repaired" in fixed.output
    shown = runner.invoke(cli, [*data, "jobs", "schedule", "--json"])
    assert shown.exit_code == 0, shown.output
    assert {s["name"] for s in json.loads(shown.stdout)} >= {"fixity", "replication"}
    table = runner.invoke(cli, [*data, "jobs", "schedule"])
    assert "fixity.cycle" in table.output
