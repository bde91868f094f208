"""ORM tables, one module each; importing this package registers them all on Base.metadata."""

from framegate.models.account import Account
from framegate.models.api_key import APIKey
from framegate.models.base import Base
from framegate.models.console_session import ConsoleSession
from framegate.models.idempotency_key import IdempotencyKey
from framegate.models.ledger_entry import LedgerEntry, LedgerKind
from framegate.models.plan import Plan
from framegate.models.route_breaker import RouteBreaker
from framegate.models.task import TERMINAL_STATUSES, Task, TaskStatus, TaskType
from framegate.models.upload import Upload
from framegate.models.webhook_delivery import WebhookDelivery
from framegate.models.webhook_endpoint import WebhookEndpoint
from framegate.models.worker import Worker

__all__ = [
    "TERMINAL_STATUSES",
    "APIKey",
    "Account",
    "Base",
    "ConsoleSession",
    "IdempotencyKey",
    "LedgerEntry",
    "LedgerKind",
    "Plan",
    "RouteBreaker",
    "Task",
    "TaskStatus",
    "TaskType",
    "Upload",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Worker",
]
