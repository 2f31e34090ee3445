"""The vault's own account keeps up with key changes, tags, notes and decisions (issue #7): a
record renamed after the last catalog backup comes back from its sidecar under its new code,
its old one still an alias; tags, notes and a decision's link to its application come back
too, and the four-property check then finds catalog and sidecars alike. On both databases."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from api.cli import main
from api.services import Runtime, ingest
from api.services.changes import approve, file_request, set_decision_link
from api.services.fourprop import Outcome, Selection, run_check
from api.services.records import update_record
from catalog import (
    NewRecord,
    Role,
    create_user,
    former_codes,
    get_decision,
    get_record,
    get_user,
)
from dangan.config import load_settings
from tests.corpus import scan
from tests.integration.api_world import run_queue
from tests.services import PostgresServer


def _invoke(rt: Runtime, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(rt.settings.data_dir), *args])
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_a_renamed_record_and_its_decision_come_back_from_the_vault(
    runtime_each_backend: Runtime,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt = runtime_each_backend
    with rt.db.write() as s:
        for name, role in (("zhao", Role.supervisor), ("wang", Role.director)):
            create_user(s, name=name, role=role, password="x" * 12, actor="root")
        supervisor, director = get_user(s, "zhao"), get_user(s, "wang")
    decision = ingest(
        rt, scan("IMG_2199.png"), NewRecord("学籍变更", 2023, student_name="万沐"), actor="root"
    ).archive_code
    old = ingest(rt, scan("IMG_3214.png"), NewRecord("新生入学", 2023), actor="root").archive_code
    run_queue(rt)
    code, out, err = _invoke(rt, capsys, "backup", "--json")
    assert code == 0, out + err

    # After the backup: the application is renamed, the decision tagged and linked to it.
    filed = file_request(rt, old, supervisor, {"year": 2022}, reason="the paper says 2022")
    new = approve(rt, filed.id, director, reason="checked").record.archive_code
    update_record(rt, decision, supervisor, {"tags": ["转入"], "notes": "原件在校办"})
    set_decision_link(
        rt,
        decision,
        supervisor,
        decision="approved",
        decision_date=dt.date(2023, 9, 1),
        approver="教务处 李主任",
        application_code=new,
    )
    run_queue(rt)

    url = rt.settings.database_url
    rt.close()
    if rt.settings.database.url is None:
        for path in rt.settings.data_dir.glob("catalog.sqlite*"):
            path.unlink()
    else:
        pg: PostgresServer = request.getfixturevalue("pg_server")
        pg.drop_database(url)
        pg.create_database(url.rsplit("/", 1)[-1])
    shutil.rmtree(rt.settings.index_dir)
    code, out, err = _invoke(rt, capsys, "restore", "--from-vault", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["records_missing_from_stores"] == []
    assert report["records_created"] == []
    assert sorted(report["records_updated"]) == sorted([decision, new])

    again = Runtime(load_settings(data_dir=rt.settings.data_dir))
    try:
        with again.db.read() as s:
            renamed = get_record(s, old)
            assert renamed.archive_code == new
            assert former_codes(s, renamed.id) == (old,)
            tagged = get_record(s, decision)
            assert (tagged.tags, tagged.notes) == (("转入",), "原件在校办")
            link = get_decision(s, tagged.id)
            assert link is not None
            assert (link.application_code, link.approver) == (new, "教务处 李主任")
            director = get_user(s, "wang")
        report_check = run_check(again, Selection((decision, new)), user=director, deep=False)
        for record in report_check.records:
            items = {i.rule: i.outcome for i in record.items}
            assert items["A3"] is Outcome.passed, (record.archive_code, record.items)
        archive = {i.rule: i.outcome for i in report_check.archive}
        assert archive["I4"] is Outcome.passed  # the old serial is held by the alias
    finally:
        again.close()
