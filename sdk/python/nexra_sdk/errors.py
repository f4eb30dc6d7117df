"""Typed exceptions, one per `error.code` of the server's catalogue
(docs/errors.md), plus the client-side failures (no connection, timeout,
a reply that is not Nexra's envelope).

Every server error keeps what the envelope said: `code`, `message`,
`details`, `status` (HTTP), `meta` (request id, latency) and `headers`.
Delegation errors (402, 403 POLICY_BLOCKED, 502, 504) also carry the
recorded delegation object in `delegation` and its id in `delegation_id`.
"""


class NexraError(Exception):
    """Base of every exception the SDK raises."""

    code = None

    def __init__(self, message, *, code=None, status=None, details=None, meta=None,
                 headers=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.details = details if isinstance(details, dict) else {}
        self.meta = meta if isinstance(meta, dict) else {}
        self.headers = headers or {}

    @property
    def request_id(self):
        return self.meta.get("request_id")

    @property
    def delegation(self):
        """The delegation object a delegation error carries (its details),
        or None."""
        return self.details if "delegation_id" in self.details else None

    @property
    def delegation_id(self):
        return self.details.get("delegation_id")

    def __str__(self):
        parts = [f"{self.code}: {self.message}" if self.code else self.message]
        if self.request_id:
            parts.append(f"(request_id {self.request_id})")
        return " ".join(parts)


class APIError(NexraError):
    """The server answered with an error envelope."""


class ValidationError(APIError):
    code = "VALIDATION_ERROR"

    @property
    def field(self):
        return self.details.get("field")


class Unauthorized(APIError):
    code = "UNAUTHORIZED"


class BudgetExceeded(APIError):
    code = "BUDGET_EXCEEDED"


class Forbidden(APIError):
    code = "FORBIDDEN"


class PolicyBlocked(APIError):
    code = "POLICY_BLOCKED"

    @property
    def failed_constraints(self):
        """Every constraint of the deciding rule that failed, with its
        numbers (docs/policies.md)."""
        fc = self.details.get("failed_constraints")
        if fc is None:
            fc = (self.details.get("policy_result") or {}).get("failed_constraints")
        return fc or []

    @property
    def policy_ref(self):
        return self.details.get("policy_ref")


class ApprovalRejected(APIError):
    code = "APPROVAL_REJECTED"


class NotFound(APIError):
    code = "NOT_FOUND"


class MethodNotAllowed(APIError):
    code = "METHOD_NOT_ALLOWED"


class Conflict(APIError):
    code = "CONFLICT"


class ApprovalExpired(APIError):
    code = "APPROVAL_EXPIRED"


class PayloadTooLarge(APIError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(APIError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class IdempotencyKeyReused(APIError):
    code = "IDEMPOTENCY_KEY_REUSED"


class RateLimited(APIError):
    code = "RATE_LIMITED"

    @property
    def retry_after(self):
        """Seconds to wait before the org has a free slot (the
        Retry-After header), or None."""
        v = self.headers.get("retry-after")
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None


class InternalError(APIError):
    code = "INTERNAL"


class CalleeFailed(APIError):
    code = "CALLEE_FAILED"


class Unavailable(APIError):
    code = "UNAVAILABLE"


class CalleeTimeout(APIError):
    code = "CALLEE_TIMEOUT"


class NexraConnectionError(NexraError):
    """The server could not be reached, or the connection broke before an
    answer came."""


class NexraTimeout(NexraConnectionError):
    """No answer within the client's timeout. For a delegation the outcome
    is unknown: look it up with get_delegation, or send the same request
    again with the same idempotency key."""


class ProtocolError(NexraError):
    """The answer was not Nexra's envelope (a proxy page, a truncated body)."""


class ApprovalPending(NexraError):
    """hire() asked for a delegation that the policy sent to a person for
    approval; it is stored as pending_approval with its budget held.
    `delegation` is the pending delegation object."""

    code = "PENDING_APPROVAL"

    def __init__(self, message, delegation, meta=None):
        super().__init__(message, details=delegation, meta=meta, status=202)



ERRORS_BY_CODE = {cls.code: cls for cls in (
    ValidationError, Unauthorized, BudgetExceeded, Forbidden, PolicyBlocked,
    ApprovalRejected, NotFound, MethodNotAllowed, Conflict, ApprovalExpired,
    PayloadTooLarge, UnsupportedMediaType, IdempotencyKeyReused, RateLimited,
    InternalError, CalleeFailed, Unavailable, CalleeTimeout)}


def error_for(code, message, **kw):
    """The exception for an error envelope; unknown codes become APIError
    (with their code), so a newer server never breaks an older SDK."""
    cls = ERRORS_BY_CODE.get(code, APIError)
    return cls(message, code=code, **kw)
