"""The one place that turns errors into exit codes, HTTP answers and log lines.

Known errors (``dangan.errors``) carry their own code, status and exit code and a message that
is safe to show. Anything else is a bug: the caller gets a generic message naming only the
exception's type (its text may hold anything), and the traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, NoReturn

import click

from dangan.errors import DanganError, ExitCode

__all__ = ["error_body", "exit_for_error"]


def error_body(exc: DanganError) -> dict[str, Any]:
    """The JSON body of an error answer: a stable code and a safe message."""
    return {"error": {"code": exc.code, "message": exc.message}}


def exit_for_error(exc: BaseException, *, debug: bool = False) -> NoReturn:
    """Print one clear line to stderr and exit with the code scripts can trust."""
    if isinstance(exc, DanganError) and type(exc) is not DanganError:
        click.echo(f"error: {exc.message}", err=True)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        sys.exit(int(exc.exit_code))
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(int(ExitCode.interrupted))
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(int(ExitCode.invalid_input))
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    else:
        click.echo(
            f"error: an unexpected {type(exc).__name__} (a bug); run again with --debug for "
            "the traceback",
            err=True,
        )
    sys.exit(int(ExitCode.software))
