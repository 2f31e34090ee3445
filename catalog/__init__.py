"""The catalog: records, archive codes, users and roles, the policy, the audit trail and jobs.

The only package that speaks SQL. Other packages use the names below and get plain frozen
dataclasses back, never live ORM objects.
"""

from catalog.audit import (
    AuditEventInfo,
    ChainHead,
    ChainProblem,
    ChainReport,
    chain_head,
    count_events,
    list_events,
    record_event,
    verify_chain,
)
from catalog.db import Database, open_database
from catalog.models import CopyState, JobState, RecordStatus, Retention, Role, SecurityClass
from catalog.types import (
    BusinessTypeInfo,
    add_business_type,
    get_business_type,
    list_business_types,
    seed_business_types,
)
from catalog.users import (
    UserInfo,
    authenticate,
    change_password,
    create_user,
    get_user,
    list_users,
    set_disabled,
)

__all__ = [
    "AuditEventInfo",
    "BusinessTypeInfo",
    "ChainHead",
    "ChainProblem",
    "ChainReport",
    "CopyState",
    "Database",
    "JobState",
    "RecordStatus",
    "Retention",
    "Role",
    "SecurityClass",
    "UserInfo",
    "add_business_type",
    "authenticate",
    "chain_head",
    "change_password",
    "count_events",
    "create_user",
    "get_business_type",
    "get_user",
    "list_business_types",
    "list_events",
    "list_users",
    "open_database",
    "record_event",
    "seed_business_types",
    "set_disabled",
    "verify_chain",
]
