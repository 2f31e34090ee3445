"""Render ``docs/cli.md`` from the commands' own ``--help``, so the manual cannot drift.

Run ``python -m api.cli_reference > docs/cli.md`` after changing a command; a test fails while
the file differs from what this renders.
"""

from __future__ import annotations

import click

from api.cli import cli

__all__ = ["render_cli_reference"]


def _walk(cmd: click.Command, parent: click.Context | None, path: list[str]) -> list[str]:
    # The commands' own context settings (e.g. `-h, --help`), as a real invocation would use.
    settings = {"max_content_width": 100, **cmd.context_settings}
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **settings)
    ctx.terminal_width = 100
    out = [f"## `{' '.join(path)}`", "", "```text", cmd.get_help(ctx), "```", ""]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _walk(sub, ctx, [*path, name])
    return out


def render_cli_reference() -> str:
    head = [
        "# The `dangan` command line",
        "",
        "Generated from the commands' `--help` by `python -m api.cli_reference > docs/cli.md`;",
        "do not edit by hand. Exit codes: 0 success, 1 a check found problems, 2 usage or input",
        "error, 3 operational error, 4 not found, 5 not permitted, 6 conflict, 70 a bug,",
        "130 interrupted.",
        "",
    ]
    return "\n".join(head + _walk(cli, None, ["dangan"]))


if __name__ == "__main__":
    click.echo(render_cli_reference(), nl=False)
