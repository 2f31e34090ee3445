"""``dangan jobs schedule``: the periodic jobs, their last run and outcome, and their next run.
Imported by ``api/cli.py``, which it is part of."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from api.cli import _State, jobs, pass_state
from api.services.schedule import states
from catalog import ScheduleState

__all__ = ["jobs_schedule", "schedule_json"]


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "—"


def _every(interval: dt.timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def schedule_json(state: ScheduleState) -> dict[str, Any]:
    """One schedule as the CLI's ``--json`` and ``GET /api/v1/schedule`` give it."""
    return {
        "name": state.name,
        "kind": state.kind,
        "interval_seconds": int(state.interval.total_seconds()),
        "description": state.description,
        "runnable": state.runnable,
        "last_run_at": state.last_run_at.isoformat() if state.last_run_at else None,
        "last_job_id": state.last_job_id,
        "outcome": state.outcome,
        "last_error": state.last_error,
        "finished_at": state.finished_at.isoformat() if state.finished_at else None,
        "next_run_at": state.next_run_at.isoformat(),
        "summary": dict(state.summary) if state.summary else None,
    }


@jobs.command("schedule")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@pass_state
def jobs_schedule(st: _State, as_json: bool) -> None:
    """The periodic jobs the workers run: last run, its outcome, next run (UTC)."""
    st.rt.require_initialised()
    found = states(st.rt)
    if as_json:
        click.echo(json.dumps([schedule_json(s) for s in found], ensure_ascii=False))
        return
    click.echo(f"{'name':<16}{'kind':<18}{'every':>6}  {'last run':<17} {'outcome':<8} next run")
    for s in found:
        outcome = s.outcome if s.runnable else "no handler"
        click.echo(
            f"{s.name:<16}{s.kind:<18}{_every(s.interval):>6}  {_when(s.last_run_at):<17} "
            f"{outcome:<8} {_when(s.next_run_at)}"
        )
        if s.summary:
            click.echo("    " + ", ".join(f"{k} {v}" for k, v in sorted(s.summary.items())))
        if s.last_error and s.outcome != "done":
            click.echo(f"    last error: {s.last_error}")
