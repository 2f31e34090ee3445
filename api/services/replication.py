"""The replication sweep (``replication.run``): every copy the catalog knows to be missing or
bad, whose object still has a good copy, is written again from it.

A store that was down at intake leaves its copies ``missing`` and a ``vault.replicate`` job
per object; those jobs give up after ``worker.max_attempts``, while an outage can last longer.
The scheduler runs this sweep every :data:`REPLICATION_INTERVAL`, so what is owed is written
once the store is back, however long it was away. Each job is one slice of objects and queues
the next; a store still out of reach fails the attempt (retried with backoff) after the slice's
reachable work is done. Objects with no good copy (``damaged``) are left to an operator.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.services.jobs import restore_copies
from api.services.runtime import Runtime, job_runtime, worker_actor
from catalog import (
    CopyState,
    JobContext,
    list_copies,
    record_event,
    register,
    report_schedule_run,
)
from dangan.errors import CorruptDataError, NotFoundError, StoreUnavailableError

__all__ = [
    "REPLICATION_INTERVAL",
    "REPLICATION_PRIORITY",
    "REPLICATION_RUN",
    "ReplicationPayload",
    "replicate_slice",
]

log = logging.getLogger(__name__)

REPLICATION_RUN = "replication.run"
REPLICATION_INTERVAL = dt.timedelta(minutes=15)
#: After intake (100), before the fixity cycle (500).
REPLICATION_PRIORITY = 200
SLICE = 50


class ReplicationPayload(BaseModel):
    """A slice of the sweep: objects after ``after`` (an object id), and the tally so far."""

    model_config = ConfigDict(extra="forbid")

    run: int | None = Field(default=None, ge=1)
    after: str = Field(default="", pattern=r"^[0-9a-f]{0,64}$")
    tally: dict[str, int] = Field(default_factory=dict)


def replicate_slice(
    rt: Runtime, payload: ReplicationPayload, *, job_id: int, actor: str
) -> dict[str, int]:
    """Restore the copies of one slice of objects; queue the next slice, or report the run.

    :returns: the run's tally so far (``restored``, ``damaged``, ``unreachable``).
    :raises StoreUnavailableError: a store was out of reach (after the slice's other work).
    """
    with rt.db.read() as session:
        broken = list_copies(
            session,
            after=(payload.after, "~") if payload.after else None,
            limit=SLICE * 2,
            states=[CopyState.missing, CopyState.bad],
        )
    object_ids = list(dict.fromkeys(c.object_id for c in broken))[:SLICE]
    tally = {"restored": 0, "damaged": 0, "unreachable": 0, **payload.tally}
    down: StoreUnavailableError | None = None
    for object_id in object_ids:
        try:
            tally["restored"] += len(restore_copies(rt, object_id, actor=actor))
        except CorruptDataError:
            tally["damaged"] += 1  # no good copy: only a backup can help
        except NotFoundError:
            continue  # disposed of meanwhile
        except StoreUnavailableError as exc:
            tally["unreachable"] += 1
            down = exc
    run = payload.run or job_id
    with rt.db.write() as session:
        if len(object_ids) == SLICE:
            nxt = ReplicationPayload(run=run, after=object_ids[-1], tally=tally)
            rt.enqueue(
                session,
                REPLICATION_RUN,
                nxt,
                key=f"{REPLICATION_RUN}:{run}:{nxt.after}",
                actor=actor,
                priority=REPLICATION_PRIORITY,
            )
        else:
            report_schedule_run(session, REPLICATION_RUN, tally)
            record_event(
                session,
                actor=actor,
                action=REPLICATION_RUN,
                target="vault",
                outcome="ok" if not (tally["damaged"] + tally["unreachable"]) else "error",
                detail={**tally, "run": run},
            )
    if down is not None:
        raise StoreUnavailableError(f"replication could not reach a store: {down.message}")
    return tally


@register(REPLICATION_RUN, ReplicationPayload)
def replication_run(ctx: JobContext[Any], payload: ReplicationPayload) -> None:
    """One slice of the replication sweep (see :func:`replicate_slice`)."""
    rt = job_runtime(ctx, "replication")
    replicate_slice(rt, payload, job_id=ctx.job.id, actor=worker_actor(ctx))
