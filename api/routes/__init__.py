"""The JSON API's routes under ``/api/v1``: thin skins over ``api.services``."""

from api.routes import (
    audit,
    auth,
    breakglass,
    changes,
    checks,
    disposition,
    incidents,
    jobs,
    ops,
    records,
    reviews,
    sampling,
    search,
    stats,
    users,
)

__all__ = [
    "audit",
    "auth",
    "breakglass",
    "changes",
    "checks",
    "disposition",
    "incidents",
    "jobs",
    "ops",
    "records",
    "reviews",
    "sampling",
    "search",
    "stats",
    "users",
]
