"""``/api/v1/search``: everything the CLI's search does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, RuntimeDep
from api.schemas import SearchOut
from api.services.search import MAX_PAGE_SIZE, search_records

router = APIRouter(tags=["search"])


@router.get("/search")
def search(
    rt: RuntimeDep,
    user: CurrentUser,
    q: Annotated[str, Query(max_length=500)] = "",
    business_type: Annotated[str | None, Query(alias="type", description="business type")] = None,
    year: Annotated[str | None, Query(description="YYYY or YYYY..YYYY")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
) -> SearchOut:
    """Search the records you may see: words, ``"phrases"``, ``type:``, ``year:2019..2021``,
    ``student:``, ``code:``; hits with highlighted snippets, the total, facets by business
    type and year, and a suggestion when nothing matched."""
    found = search_records(
        rt, q, user=user, page=page, page_size=page_size, business_type=business_type, year=year
    )
    return SearchOut.of(found)
