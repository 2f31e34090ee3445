"""The web pages at ``/``: server-rendered (Jinja2, ``api/templates``), a little plain
JavaScript (``api/static``), Chinese by default with English switchable (``api/locale``).

Each module is one area of the pages with its own router; :func:`routers` lists them all.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    import api.pages.account
    import api.pages.breakglass
    import api.pages.changes
    import api.pages.checks
    import api.pages.dashboard
    import api.pages.disposition
    import api.pages.governance
    import api.pages.records
    import api.pages.reviews
    import api.pages.sampling
    import api.pages.search
    import api.pages.upload

    return [
        api.pages.account.router,
        api.pages.dashboard.router,
        api.pages.upload.router,
        api.pages.records.router,
        api.pages.reviews.router,
        api.pages.changes.router,
        api.pages.search.router,
        api.pages.governance.router,
        api.pages.disposition.router,
        api.pages.checks.router,
        api.pages.sampling.router,
        api.pages.breakglass.router,
    ]
