"""ORM tables, one module each; importing this package registers them all on Base.metadata."""

from framegate.models.account import Account
from framegate.models.api_key import APIKey
from framegate.models.base import Base
from framegate.models.ledger_entry import LedgerEntry, LedgerKind
from framegate.models.task import TERMINAL_STATUSES, Task, TaskStatus, TaskType

__all__ = [
    "TERMINAL_STATUSES",
    "APIKey",
    "Account",
    "Base",
    "LedgerEntry",
    "LedgerKind",
    "Task",
    "TaskStatus",
    "TaskType",
]
