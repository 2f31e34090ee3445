"""Readiness: can this process serve? The catalog answers and both vault stores are reachable.

It names no object and reads no content; a store is asked for the first name it lists.
"""

from __future__ import annotations

import logging

from api.services.runtime import Runtime
from dangan.errors import DanganError

__all__ = ["readiness"]

log = logging.getLogger(__name__)


def readiness(rt: Runtime) -> dict[str, bool]:
    """``{"catalog": ..., "primary": ..., "replica": ...}``: each true when it answered."""
    checks = {"catalog": False, "primary": False, "replica": False}
    try:
        rt.require_initialised().current_revision()
        checks["catalog"] = True
    except DanganError as exc:
        log.warning("catalog not ready", extra={"event": "not_ready", "error": exc.code})
    try:
        stores = rt.vault.stores
    except DanganError as exc:
        log.warning("vault not ready", extra={"event": "not_ready", "error": exc.code})
        return checks
    for name, backend in stores.items():
        try:
            next(iter(backend.list()), None)
            checks[name] = True
        except DanganError as exc:
            log.warning(
                "store not ready", extra={"event": "not_ready", "store": name, "error": exc.code}
            )
    return checks
