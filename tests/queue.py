"""Running the job queue in the test's own process, until nothing is left to run."""

from __future__ import annotations

from collections.abc import Collection

from api.services import Runtime
from api.services.jobs import KEYS_REWRAP, VAULT_REPAIR, VAULT_REPLICATE, VAULT_SIDECAR
from catalog import run_one

# The vault's own jobs, without the OCR pipeline: for tests about copies and keys.
VAULT_KINDS = (VAULT_REPLICATE, VAULT_REPAIR, VAULT_SIDECAR, KEYS_REWRAP)


def drain(rt: Runtime, kinds: Collection[str] | None = None, *, lease_seconds: float = 120) -> int:
    """Run due jobs (of ``kinds``, or every kind) until none is left; how many ran."""
    ran = 0
    while run_one(rt.db, "test", rt, lease_seconds=lease_seconds, kinds=kinds) is not None:
        ran += 1
    return ran
