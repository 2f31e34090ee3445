"""The office's indicators: per quarter (entered, timeliness, completeness), counts by type,
year and class, status changes per year; over the records each person may see; on the
dashboard and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from api.services.indicators import SamplingQuarter, office_indicators, sampling_by_quarter
from api.services.records import update_record
from catalog import Role, UserInfo, get_record, get_user
from catalog.indicators import quarter_of
from tests.integration.api_world import World, sign_in_browser, user_name, world


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("indicators")) as the_world:
        yield the_world


def _user(w: World, role: Role) -> UserInfo:
    with w.rt.db.read() as session:
        return get_user(session, user_name(role))


def _quarter(w: World) -> str:
    with w.rt.db.read() as session:
        return quarter_of(get_record(session, w.internal).created_at)


def test_each_quarter_counts_intake_timeliness_and_completeness(w: World) -> None:
    ind = office_indicators(w.rt, _user(w, Role.director))
    (q,) = ind.quarters
    assert q.quarter == _quarter(w)
    assert (q.entered, q.archived) == (2, 2)
    assert q.mean_hours is not None
    assert 0 <= q.mean_hours <= q.p90_hours  # type: ignore[operator]
    # The world's records have no title and no paper location: both are incomplete.
    assert q.incomplete_fields == 2
    assert q.incomplete_pages == 0
    assert q.completeness == 0.0
    update_record(
        w.rt, w.contract, _user(w, Role.director), {"title": "合同", "paper_location": "B-1"}
    )
    (q,) = office_indicators(w.rt, _user(w, Role.director)).quarters
    assert q.incomplete_fields == 1  # the contract needs no student; the other still lacks fields
    assert q.completeness == 0.5


def test_counts_leave_out_what_the_reader_may_not_see(w: World) -> None:
    director = office_indicators(w.rt, _user(w, Role.director))
    auditor = office_indicators(w.rt, _user(w, Role.auditor))
    assert dict(director.by_type) == {"学籍变更": 1, "合同": 1}
    assert dict(auditor.by_type) == {"学籍变更": 1}
    assert auditor.quarters[0].entered == 1
    assert auditor.status_changes == ((2023, "学籍变更", 1),)
    assert dict(director.by_year) == {"2023": 2}


def test_sampling_figures_give_accuracy_error_rate_and_a_trend(w: World) -> None:
    here = _quarter(w)
    ind = office_indicators(
        w.rt,
        _user(w, Role.director),
        sampling={"2020Q1": SamplingQuarter(10, 1, 1), here: SamplingQuarter(20, 1, 3)},
    )
    old, now = ind.quarters
    assert (old.quarter, old.entered, old.error_rate) == ("2020Q1", 0, 0.1)
    assert now.accuracy == 3 / 20
    assert now.error_rate == 1 / 20
    assert ind.trends["error_rate"] == round(1 / 20 - 0.1, 4)


def test_the_api_gives_json_and_csv_and_the_dashboard_shows_them(w: World) -> None:
    h = w.headers(Role.auditor)
    body = w.client.get("/api/v1/stats/indicators", headers=h)
    assert body.status_code == 200, body.text
    assert body.json()["quarters"][0]["entered"] == 1
    got = w.client.get("/api/v1/stats/indicators", params={"format": "csv"}, headers=h)
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0] == ["section", "key", "metric", "value"]
    assert ["quarter", _quarter(w), "entered", "1"] in rows
    assert not any("合同" in cell for row in rows for cell in row)
    page = sign_in_browser(w, Role.director).get("/")
    assert f'data-quarter="{_quarter(w)}"' in page.text
    assert 'href="/api/v1/stats/indicators?format=csv"' in page.text
    assert w.client.get("/api/v1/stats/indicators").status_code == 401


def test_a_sampling_draw_feeds_the_quarter_as_each_reader_may_see_it(w: World) -> None:
    here = _quarter(w)
    drawn = w.client.post(
        "/api/v1/sampling/draws", json={"quarter": here}, headers=w.headers(Role.director)
    )
    assert drawn.status_code in (200, 201), drawn.text
    mine = office_indicators(
        w.rt, _user(w, Role.director), sampling=sampling_by_quarter(w.rt, _user(w, Role.director))
    )
    theirs = w.client.get("/api/v1/stats/indicators", headers=w.headers(Role.auditor)).json()
    (q,) = [x for x in mine.quarters if x.quarter == here]
    assert q.sampled == 2  # both records of a 2-record quarter
    assert q.findings == 0
    (t,) = [x for x in theirs["quarters"] if x["quarter"] == here]
    assert t["sampled"] == 1  # the contract item is not the auditor's to count
    page = sign_in_browser(w, Role.director).get("/")
    assert 'id="tile-findings-overdue"' in page.text
