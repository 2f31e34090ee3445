"""The search page: the query, filters by business type and year with facet counts, hits with
their snippets marked, and paging. The same search service as ``/api/v1/search`` and the CLI,
so a person sees exactly what the policy lets their role see."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.pages.base import PageUser, render
from api.pages.marks import Piece, cut
from api.services.search import SearchPage, search_records
from dangan.errors import InvalidInputError
from indexer import Snippet

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 10


def snippet_pieces(snippet: Snippet) -> list[Piece]:
    """A snippet cut at its highlights, for the template to mark."""
    return cut(snippet.text, snippet.highlights)


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    rt: RuntimeDep,
    user: PageUser,
    q: Annotated[str, Query(max_length=500)] = "",
    business_type: Annotated[str, Query(alias="type", max_length=32)] = "",
    year: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Response:
    found: SearchPage | None = None
    error: str | None = None
    asked = bool(q.strip() or business_type or year)
    if asked:
        try:
            found = search_records(
                rt,
                q,
                user=user,
                page=page,
                page_size=PAGE_SIZE,
                business_type=business_type or None,
                year=year or None,
            )
        except InvalidInputError as exc:
            error = exc.message

    def link(**change: object) -> str:
        params = {"q": q, "type": business_type, "year": year, **change}
        return "/search?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    return render(
        request,
        "search.html",
        {
            "q": q,
            "business_type": business_type,
            "year": year,
            "found": found,
            "error": error,
            "page": page,
            "pages": max(1, -(-found.total // PAGE_SIZE)) if found else 1,
            "link": link,
            "page_link": lambda n: link(page=n),
            "pieces": snippet_pieces,
        },
        user=user,
    )
