"""Nexra Python SDK: hire agents through a governed control plane, and
verify what Nexra sends to your own agents. See docs/sdk.md."""
from .callee import (CalleeError, Delegation, InvalidToken, InvalidWebhook, WebhookServer,
                     parse_webhook, verify_delegation_token, verify_standard_webhook,
                     verify_webhook_signature, webhook_handler)
from .client import NexraClient
from .errors import (APIError, ApprovalExpired, ApprovalPending, ApprovalRejected,
                     BudgetExceeded, CalleeFailed, CalleeTimeout, Conflict, Forbidden,
                     IdempotencyKeyReused, InternalError, MethodNotAllowed, NexraConnectionError,
                     NexraError, NexraTimeout, NotFound, PayloadTooLarge, PolicyBlocked,
                     ProtocolError, RateLimited, Unauthorized, Unavailable,
                     UnsupportedMediaType, ValidationError)
from .results import HireResult, Result, ResultList

__version__ = "0.1.0"

__all__ = [
    "NexraClient", "Result", "ResultList", "HireResult",
    "verify_webhook_signature", "verify_standard_webhook", "verify_delegation_token",
    "parse_webhook", "webhook_handler", "WebhookServer", "Delegation", "CalleeError",
    "InvalidWebhook", "InvalidToken",
    "NexraError", "APIError", "ValidationError", "Unauthorized", "BudgetExceeded",
    "Forbidden", "PolicyBlocked", "ApprovalRejected", "NotFound", "MethodNotAllowed",
    "Conflict", "ApprovalExpired", "PayloadTooLarge", "UnsupportedMediaType",
    "IdempotencyKeyReused", "RateLimited", "InternalError", "CalleeFailed", "Unavailable",
    "CalleeTimeout", "NexraConnectionError", "NexraTimeout", "ProtocolError",
    "ApprovalPending",
]
