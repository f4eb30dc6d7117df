"""What the client methods return: the envelope's `data` as plain Python
values (a dict or a list), with the envelope's `meta` and the HTTP details
kept on the object."""


class _Meta:
    __slots__ = ()

    @property
    def request_id(self):
        return self.meta.get("request_id")

    @property
    def latency_ms(self):
        return self.meta.get("latency_ms")

    @property
    def rate_limit(self):
        """The RateLimit-* headers of the answer as integers (limit,
        remaining, reset), or None when the server sent none."""
        h = self.headers
        if "ratelimit-limit" not in h:
            return None
        out = {}
        for k in ("limit", "remaining", "reset"):
            try:
                out[k] = int(h.get("ratelimit-" + k))
            except (TypeError, ValueError):
                out[k] = None
        return out


class Result(dict, _Meta):
    """A JSON object from `data`. `meta` is the envelope's meta
    (request_id, latency_ms), `status` the HTTP status, `headers` the
    response headers (lower-case names), `attempts` how many requests the
    call took (retries included)."""

    def __init__(self, data=None, meta=None, status=None, headers=None, attempts=1):
        super().__init__(data or {})
        self.meta = meta or {}
        self.status = status
        self.headers = headers or {}
        self.attempts = attempts


class ResultList(list, _Meta):
    """A JSON array from `data` (a list endpoint): `meta` also has
    has_more, limit and offset."""

    def __init__(self, data=None, meta=None, status=None, headers=None, attempts=1):
        super().__init__(data or [])
        self.meta = meta or {}
        self.status = status
        self.headers = headers or {}
        self.attempts = attempts

    @property
    def has_more(self):
        return bool(self.meta.get("has_more"))


class HireResult(Result):
    """What `hire` returns, shaped as the seed shows it:
    {delegation_id, result, cost_usd, audit_event}. The whole delegation
    object (policy_result, usage, trust_delta, budget_remaining_usd, ...)
    is in `delegation`."""

    def __init__(self, delegation, meta=None, status=None, headers=None, attempts=1):
        usage = delegation.get("usage") or {}
        super().__init__({
            "delegation_id": delegation.get("delegation_id"),
            "result": delegation.get("result"),
            "cost_usd": usage.get("cost_usd"),
            "audit_event": delegation.get("audit_event"),
        }, meta, status, headers, attempts)
        self.delegation = delegation

    @property
    def callee_agent_id(self):
        return self.delegation.get("callee_agent_id")

    @property
    def trust_delta(self):
        return self.delegation.get("trust_delta")


def wrap(data, meta, status, headers, attempts):
    if isinstance(data, list):
        return ResultList(data, meta, status, headers, attempts)
    if isinstance(data, dict):
        return Result(data, meta, status, headers, attempts)
    return data
