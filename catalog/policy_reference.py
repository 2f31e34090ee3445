"""Render ``docs/permissions.md`` from the policy's table, so the page cannot drift from the code.

Run ``python -m catalog.policy_reference > docs/permissions.md`` after changing the table in
``catalog/policy.py``; a test fails while the file differs from what this renders. It only
reads the public table: deciding stays in ``catalog/policy.py``.
"""

from __future__ import annotations

import sys
from typing import Final

from catalog.models import Role, SecurityClass
from catalog.policy import (
    ActionScope,
    Permit,
    PermitCondition,
    breakglass_gives,
    policy_table,
    visible_classes,
)

__all__ = ["render_permissions_reference"]

_ROLE_LABELS: Final = {
    Role.clerk: "clerk (专员)",
    Role.supervisor: "supervisor (主管)",
    Role.director: "director (总监)",
    Role.auditor: "auditor (审计)",
    Role.admin: "admin (管理员)",
}


def _classes(classes: frozenset[SecurityClass]) -> str:
    return ", ".join(c.value for c in SecurityClass if c in classes)


def _record_cell(permit: Permit | None) -> str:
    if permit is None:
        return "—"
    cell = _classes(permit.classes)
    return f"{cell} (own drafts)" if permit.condition is PermitCondition.own_draft else cell


def _system_cell(permit: Permit | None) -> str:
    return "—" if permit is None else "yes"


def render_permissions_reference() -> str:
    """The whole of ``docs/permissions.md``."""
    header = "| action | what it covers | " + " | ".join(_ROLE_LABELS[r] for r in Role) + " |"
    divider = "|---|---|" + "---|" * len(Role)
    table = policy_table()
    out = [
        "# Permissions",
        "",
        "Generated from the table in `catalog/policy.py` by",
        "`python -m catalog.policy_reference > docs/permissions.md`; do not edit by hand.",
        "That module decides every permission in dangan (action × role × record security class);",
        "nothing else compares roles.",
        "",
        "## Which records exist for whom",
        "",
        "| role | sees records of class |",
        "|---|---|",
        *(f"| {_ROLE_LABELS[r]} | {_classes(visible_classes(r))} |" for r in Role),
        "",
        "A record of a class a role does not see behaves exactly like a record that does not",
        'exist: "no such record" (404). It is left out of search results, listings, counts,',
        "exports and the audit trail that role reads. A disabled user may do nothing and sees",
        "nothing.",
        "",
        "## Actions on records",
        "",
        "A cell lists the security classes of the records the role may act on; — means never.",
        "*own drafts*: only on records the user entered, while their intake is unfinished",
        "(status `pending` or `processing`, or its intake review waits at the clerk's gates",
        "or sent it back: `docs/review.md`).",
        "",
        header,
        divider,
    ]
    for rule in table:
        if rule.scope is ActionScope.record:
            cells = " | ".join(_record_cell(rule.permits.get(r)) for r in Role)
            out.append(f"| `{rule.action}` | {rule.summary} | {cells} |")
    out += [
        "",
        "## Other actions",
        "",
        "These do not depend on a record's class; whatever they list or count is limited to the",
        "records the role sees.",
        "",
        header,
        divider,
    ]
    for rule in table:
        if rule.scope is ActionScope.system:
            cells = " | ".join(_system_cell(rule.permits.get(r)) for r in Role)
            out.append(f"| `{rule.action}` | {rule.summary} | {cells} |")
    holders = ", ".join(_ROLE_LABELS[r] for r in Role if breakglass_gives(r))
    out += [
        "",
        "## Break-glass",
        "",
        "While a break-glass grant is in force (docs/breakglass.md), its holder sees records of",
        "every class and may do `record.read_metadata`, `record.read_content` and",
        "`record.read_history` on them as far as their role may on internal records; nothing",
        "else changes. Only roles that gain something may hold a grant:",
        f"{holders}. Every event the holder causes meanwhile is marked with the grant.",
    ]
    out += [
        "",
        "## Denied attempts",
        "",
        "Every denied attempt leaves an audit event with outcome `denied`",
        "(`catalog.policy.audit_denied`), written in a transaction of its own because the",
        "attempt itself is rolled back.",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_permissions_reference())
