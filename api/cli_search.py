"""``dangan status``, ``dangan search`` and ``dangan index``: following records through the
pipeline and finding them. Imported by ``api/cli.py``, which they are part of."""

from __future__ import annotations

import json
from typing import Any

import click

from api.cli import _person, _State, cli, pass_state
from api.services.search import SearchPage, rebuild_index, search_records
from catalog import (
    Action,
    RecordInfo,
    UserInfo,
    get_record,
    list_pages,
    record_not_found,
    record_progress,
    require,
)
from dangan.errors import InvalidInputError, NotFoundError
from indexer import Snippet

__all__ = ["index", "search", "status"]

_FAILED = ("warn", "fail")  # the verdicts of a failed digitization check (docs/quality.md)


@cli.command()
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--as", "actor", metavar="USER", help="The user asking (the policy applies).")
@pass_state
def status(st: _State, code: str, as_json: bool, actor: str | None) -> None:
    """How far record CODE is: its status, pipeline stage and each page's OCR state."""
    _who, person = _person(st, actor)
    with st.rt.require_initialised().read() as s:
        record = get_record(s, code) if person is None else _visible(s, code, person)
        progress = record_progress(s, record.id)
        pages = list_pages(s, record.id)
    doc: dict[str, Any] = {
        "archive_code": progress.archive_code,
        "status": progress.status.value,
        "stage": progress.stage.value,
        "pages": progress.pages,
        "pages_done": progress.pages_done,
        "pages_failed": progress.pages_failed,
        "pages_pending": progress.pages_pending,
        "needs_review": progress.needs_review,
        "processed_at": progress.processed_at.isoformat() if progress.processed_at else None,
        "page_detail": [
            {
                "page": p.number,
                "state": p.state.value,
                "rotation": p.rotation,
                "skew": p.skew,
                "engine": p.engine,
                "confidence": p.confidence,
                "needs_review": p.needs_review,
                "error": p.error,
                "checks": [
                    {
                        "name": c.name,
                        "verdict": c.verdict.value,
                        "value": c.value,
                        "reading": c.reading,
                        "threshold": c.threshold,
                    }
                    for c in p.checks
                ],
            }
            for p in pages
        ],
    }
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    click.echo(f"{doc['archive_code']}  {doc['status']}  (stage {doc['stage']})")
    click.echo(
        f"pages: {progress.pages} — {progress.pages_done} read, {progress.pages_failed} failed, "
        f"{progress.pages_pending} pending" + ("; needs review" if progress.needs_review else "")
    )
    for p in pages:
        conf = f"{p.confidence:.2f}" if p.confidence is not None else "-"
        flag = " review" if p.needs_review else ""
        failed = [f"{c.name}:{c.verdict.value}" for c in p.checks if c.verdict.value in _FAILED]
        quality = f" quality={','.join(failed)}" if failed else ""
        click.echo(
            f"  page {p.number}: {p.state.value} engine={p.engine or '-'} conf={conf}"
            f" turned={p.rotation}{flag}{quality}"
        )


def _visible(s: Any, code: str, person: UserInfo) -> RecordInfo:
    try:
        record = get_record(s, code)
    except NotFoundError:
        raise record_not_found() from None
    require(person, Action.record_read_metadata, record)
    return record


def _page_json(result: SearchPage) -> dict[str, Any]:
    return {
        "query": result.query,
        "total": result.total,
        "page": result.page,
        "page_size": result.page_size,
        "suggestion": result.suggestion,
        "facets": {
            k: [{"value": f.value, "count": f.count} for f in v] for k, v in result.facets.items()
        },
        "hits": [
            {
                "archive_code": h.record.archive_code,
                "title": h.record.title,
                "business_type": h.record.business_type,
                "year": h.record.year,
                "student_name": h.record.student_name,
                "student_no": h.record.student_no,
                "score": round(h.score, 4),
                "snippets": [
                    {
                        "page": sn.page,
                        "text": sn.text,
                        "highlights": [list(x) for x in sn.highlights],
                    }
                    for sn in h.snippets
                ],
            }
            for h in result.hits
        ],
    }


def _snippet_json(sn: Snippet) -> dict[str, Any]:
    return {"page": sn.page, "text": sn.text, "highlights": [list(x) for x in sn.highlights]}


def _marked(text: str, highlights: tuple[tuple[int, int], ...]) -> str:
    out, at = [], 0
    for start, end in sorted(highlights):
        out.append(text[at:start])
        out.append(click.style(text[start:end], bold=True, fg="yellow"))
        at = end
    out.append(text[at:])
    return "".join(out).replace("\n", " ")


@cli.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--as", "actor", metavar="USER", required=True, help="Search as this user.")
@click.option("--type", "business_type", metavar="T", help="Only this business type.")
@click.option("--year", metavar="YYYY[..YYYY]", help="Only this year or range of years.")
@click.option("--page", default=1, show_default=True, help="Which page of results.")
@click.option("--page-size", default=10, show_default=True, help="Results per page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def search(
    st: _State,
    query: tuple[str, ...],
    actor: str,
    business_type: str | None,
    year: str | None,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """Search the archive as USER: words (all required), "quoted phrases", and filters
    type:新生入学, year:2019..2021, student:NAME-or-NUMBER, code:2023-新生入学-001."""
    _who, person = _person(st, actor)
    if person is None:
        raise InvalidInputError("--as USER is needed")
    result = search_records(
        st.rt,
        " ".join(query),
        user=person,
        page=page,
        page_size=page_size,
        business_type=business_type,
        year=year,
    )
    if as_json:
        click.echo(json.dumps(_page_json(result), ensure_ascii=False))
        return
    first = (result.page - 1) * result.page_size
    click.echo(
        f"{result.total} records"
        + (f" — did you mean: {result.suggestion}" if result.suggestion else "")
    )
    for n, hit in enumerate(result.hits, start=first + 1):
        r = hit.record
        who = " ".join(x for x in (r.student_name, r.student_no) if x)
        click.echo(f"{n:>3}. {r.archive_code}  {r.title}  {who}")
        for sn in hit.snippets:
            click.echo(f"       p.{sn.page}: {_marked(sn.text, sn.highlights)}")
    for name, facets in result.facets.items():
        if facets:
            click.echo(f"{name}: " + ", ".join(f"{f.value} ({f.count})" for f in facets))


@cli.group()
def index() -> None:
    """The search index: derived data, rebuilt from the catalog and the vault."""


@index.command("rebuild")
@click.option("--as", "actor", metavar="USER", help="Recorded in the audit trail.")
@pass_state
def index_rebuild(st: _State, actor: str | None) -> None:
    """Build the search index anew from the OCR text in the vault and swap it in."""
    who, person = _person(st, actor)
    if person is not None:
        require(person, Action.job_manage)
    count = rebuild_index(st.rt, actor=who)
    click.echo(f"indexed {count} records")
