"""NexraClient: the seed's high-level calls over the REST API.

Every method returns the envelope's `data` (a Result dict or a ResultList)
with `meta` kept on it, or raises the typed exception of `error.code`
(errors.py). Methods are synchronous, except `hire`, which is a coroutine
as the seed writes it (`await client.hire(...)`); every method also has an
async twin named with an `a` prefix (`aregister`, `adelegate`, ...), and
`hire_sync` is the blocking form of `hire`.
"""
import asyncio
import decimal
import functools
import os
import secrets
import time
import uuid

from . import errors
from ._transport import IDEMPOTENT, Transport, path_segment, query_string
from .results import HireResult, Result

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_DELEGATION_TIMEOUT_MS = 30000
# Slack on top of a delegation's timeout_ms for the HTTP request that waits
# for it: the server answers 504 CALLEE_TIMEOUT itself when the callee is late.
DELEGATION_SLACK_S = 15.0


def _usd(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float, decimal.Decimal)):
        raise TypeError(f"{name} must be a number of USD like 0.25, got {v!r}")
    return float(v) if isinstance(v, decimal.Decimal) else v


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


def _async_twin(fn):
    @functools.wraps(fn)
    async def twin(self, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, self, *args, **kwargs))
    twin.__doc__ = f"Async form of `{fn.__name__}` (runs it in the default executor)."
    return twin


class NexraClient:
    """A client for one org (its API key), optionally acting as one of its
    agents (`agent_id`, sent as X-Agent-ID; required to delegate).

    Defaults come from the environment like the CLI's: NEXRA_API_KEY,
    NEXRA_SERVER (else http://127.0.0.1:8000) and NEXRA_AGENT_ID.
    """

    def __init__(self, api_key=None, base_url=None, agent_id=None, *, timeout=30.0,
                 max_retries=2, retry_max_wait=30.0, user_agent=None):
        api_key = api_key if api_key is not None else os.environ.get("NEXRA_API_KEY")
        base_url = base_url or os.environ.get("NEXRA_SERVER") or DEFAULT_BASE_URL
        agent_id = agent_id if agent_id is not None else os.environ.get("NEXRA_AGENT_ID")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive seconds")
        self._t = Transport(base_url, api_key, agent_id or None, timeout, max_retries,
                            retry_max_wait, user_agent)

    @property
    def base_url(self):
        return self._t.base_url

    @property
    def agent_id(self):
        return self._t.agent_id

    def as_agent(self, agent_id):
        """A client sharing this one's key and settings, acting as agent_id."""
        other = NexraClient.__new__(NexraClient)
        t = self._t
        other._t = Transport(t.base_url, t.api_key, agent_id, t.timeout, t.max_retries,
                             t.retry_max_wait, t.user_agent)
        return other

    def _req(self, method, path, body=None, **kw):
        return self._t.request(method, path, body, **kw)

    # -- orgs ---------------------------------------------------------------

    @classmethod
    def register_org(cls, name, plan="starter", *, base_url=None, admin_token=None,
                     timeout=30.0):
        """POST /v1/orgs/register: a new org; the result has `api_key` and
        `test_api_key`, shown this once."""
        base_url = base_url or os.environ.get("NEXRA_SERVER") or DEFAULT_BASE_URL
        t = Transport(base_url, admin_token, None, timeout, 0, 0)
        return t.request("POST", "/v1/orgs/register", {"name": name, "plan": plan},
                         auth=admin_token is not None)

    def me(self):
        """GET /v1/orgs/me."""
        return self._req("GET", "/v1/orgs/me")

    # -- agents -------------------------------------------------------------

    def register(self, agent_id, name, description, capability_type, webhook_url, pricing,
                 sla, input_schema, output_schema, webhook_secret=None, is_public=None):
        """POST /v1/agents/register with the seed's fields.

        The API requires a webhook secret of 32+ characters, which the seed's
        call does not pass: when `webhook_secret` is omitted the SDK
        generates a strong one and returns it in the result as
        `webhook_secret` (the server never shows it again; give it to the
        agent so it can verify its webhooks)."""
        generated = webhook_secret is None
        if generated:
            webhook_secret = secrets.token_urlsafe(32)
        body = _drop_none({
            "agent_id": agent_id, "name": name, "description": description,
            "capability_type": capability_type, "webhook_url": webhook_url,
            "webhook_secret": webhook_secret, "pricing": pricing, "sla": sla,
            "input_schema": input_schema, "output_schema": output_schema,
            "is_public": is_public})
        res = self._req("POST", "/v1/agents/register", body)
        if generated:
            res["webhook_secret"] = webhook_secret
        return res

    def update_agent(self, agent_id, **fields):
        """PUT /v1/agents/{agent_id}: replaces the definition (the same
        fields as register, webhook_secret included)."""
        return self._req("PUT", "/v1/agents/" + path_segment(agent_id), fields)

    def get_agent(self, agent_id):
        return self._req("GET", "/v1/agents/" + path_segment(agent_id))

    def list_agents(self, status=None, capability_type=None, limit=None, offset=None):
        return self._req("GET", "/v1/agents" + query_string(
            {"status": status, "capability_type": capability_type, "limit": limit,
             "offset": offset}))

    def pause_agent(self, agent_id):
        """DELETE /v1/agents/{agent_id}: status paused."""
        return self._req("DELETE", "/v1/agents/" + path_segment(agent_id))

    def activate_agent(self, agent_id):
        return self._req("POST", "/v1/agents/" + path_segment(agent_id) + "/activate")

    # -- discovery ----------------------------------------------------------

    def discover(self, query=None, capability_type=None, budget_cap=None,
                 max_latency_ms=None, exclude_agents=None, include_cross_org=None,
                 limit=None):
        """POST /v1/capabilities/discover: agents ranked for a natural
        language query and/or a capability type."""
        body = _drop_none({
            "query": query, "capability_type": capability_type,
            "budget_cap_usd": None if budget_cap is None else _usd(budget_cap, "budget_cap"),
            "max_latency_ms": max_latency_ms, "exclude_agents": exclude_agents,
            "include_cross_org": include_cross_org, "limit": limit})
        return self._req("POST", "/v1/capabilities/discover", body, mode="safe")

    # -- delegations --------------------------------------------------------

    def _delegate(self, body, idempotency_key, timeout_ms):
        if idempotency_key is None:
            idempotency_key = "sdk-" + uuid.uuid4().hex
        wait = (timeout_ms or DEFAULT_DELEGATION_TIMEOUT_MS) / 1000.0 + DELEGATION_SLACK_S
        if self._t.timeout is not None:
            wait = max(wait, self._t.timeout)
        return self._req("POST", "/v1/delegate", body, idempotency_key=idempotency_key,
                         timeout=wait)

    def delegate(self, callee_agent_id, task, budget_cap, *, capability=None, task_type=None,
                 query=None, context_scope=None, timeout_ms=None, callback_url=None,
                 idempotency_key=None):
        """POST /v1/delegate to one callee; returns the delegation object
        (200 completed, 202 pending_approval or dispatched).

        `task` is the task input, what the callee receives (as in `hire`
        and in the webhook); it is sent as {"type": task_type, "input":
        task}. `task_type` defaults to `capability` when given. Every call
        carries an Idempotency-Key (a fresh one unless given), so the SDK
        may retry it safely."""
        body = self._delegation_body(task, budget_cap, task_type or capability, query,
                                     context_scope, timeout_ms, callback_url)
        body["callee_agent_id"] = callee_agent_id
        if capability is not None:
            body["capability"] = capability
        return self._delegate(body, idempotency_key, timeout_ms)

    @staticmethod
    def _delegation_body(task, budget_cap, task_type, query, context_scope, timeout_ms,
                         callback_url):
        t = {"input": task}
        if task_type is not None:
            t["type"] = task_type
        body = _drop_none({"task": t, "budget_cap_usd": _usd(budget_cap, "budget_cap"),
                           "query": query, "context_scope": context_scope,
                           "timeout_ms": timeout_ms})
        if callback_url is not None:
            body["callback_url"] = callback_url
        return body

    def hire_sync(self, capability, task, budget_cap, *, query=None, callee_agent_id=None,
                  context_scope=None, timeout_ms=None, idempotency_key=None,
                  wait_for_approval=None, poll_interval=1.0):
        """The blocking form of `hire`."""
        body = self._delegation_body(task, budget_cap, capability, query, context_scope,
                                     timeout_ms, None)
        body["capability"] = capability
        if callee_agent_id is not None:
            body["callee_agent_id"] = callee_agent_id
        d = self._delegate(body, idempotency_key, timeout_ms)
        if d.get("status") == "pending_approval":
            if wait_for_approval is None:
                raise errors.ApprovalPending(
                    f"delegation {d.get('delegation_id')} is waiting for a human approval",
                    dict(d), meta=d.meta)
            d = self._wait_decided(d, wait_for_approval, poll_interval)
        return HireResult(dict(d), d.meta, d.status, d.headers, d.attempts)

    def _wait_decided(self, d, wait_for, poll_interval):
        did = d["delegation_id"]
        deadline = time.monotonic() + wait_for
        while d.get("status") in ("pending_approval", "dispatched"):
            if time.monotonic() >= deadline:
                raise errors.ApprovalPending(
                    f"delegation {did} still {d.get('status')} after {wait_for} s",
                    dict(d), meta=d.meta)
            time.sleep(poll_interval)
            d = self.get_delegation(did)
        if d.get("status") != "completed":
            e = d.get("error") or {}
            raise errors.error_for(e.get("code"), e.get("message") or d.get("status"),
                                   status=d.status, details=dict(d), meta=d.meta)
        return d

    async def hire(self, capability, task, budget_cap, **kwargs):
        """Hires the best agent of `capability` for `task` (its input) under
        `budget_cap` USD, and returns the seed's dict: {delegation_id,
        result, cost_usd, audit_event}, with the whole delegation in
        `.delegation` and the envelope's meta in `.meta`.

        Raises PolicyBlocked, BudgetExceeded, CalleeFailed, CalleeTimeout,
        NotFound (no candidate), ValidationError (input refused by the
        callee's schema), ...; ApprovalPending when a person must approve
        first (pass wait_for_approval=SECONDS to wait for the decision).
        Keyword arguments: query, callee_agent_id, context_scope, timeout_ms,
        idempotency_key, wait_for_approval, poll_interval."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(
            self.hire_sync, capability, task, budget_cap, **kwargs))

    ahire = hire

    def get_delegation(self, delegation_id):
        return self._req("GET", "/v1/delegations/" + path_segment(delegation_id))

    def list_delegations(self, agent_id=None, status=None, from_=None, to=None, limit=None,
                         offset=None):
        """GET /v1/delegations; `from_`/`to` take RFC 3339 strings or
        datetimes."""
        return self._req("GET", "/v1/delegations" + query_string(
            {"agent_id": agent_id, "status": status, "from": from_, "to": to,
             "limit": limit, "offset": offset}))

    def _decide(self, what, delegation_id, approver, reason, timeout):
        body = _drop_none({"approver": approver, "reason": reason})
        return self._req("POST", f"/v1/delegations/{path_segment(delegation_id)}/{what}",
                         body, timeout=timeout)

    def approve(self, delegation_id, approver=None, reason=None, *, timeout=None):
        """POST /v1/delegations/{id}/approve: runs the delegation and answers
        with it settled (or dispatched, with a callback_url)."""
        if timeout is None:
            timeout = max(self._t.timeout or 0,
                          DEFAULT_DELEGATION_TIMEOUT_MS / 1000 + DELEGATION_SLACK_S)
        return self._decide("approve", delegation_id, approver, reason, timeout)

    def reject(self, delegation_id, reason=None, approver=None):
        return self._decide("reject", delegation_id, approver, reason, None)

    # -- policies -----------------------------------------------------------

    def upload_policy(self, name, yaml, priority=None, enabled=None):
        """POST /v1/policies: a new policy, or the next version of the policy
        called `name`. `yaml` is the document's text."""
        return self._req("POST", "/v1/policies", _drop_none(
            {"name": name, "yaml": yaml, "priority": priority, "enabled": enabled}))

    def list_policies(self, limit=None, offset=None):
        return self._req("GET", "/v1/policies" + query_string({"limit": limit,
                                                              "offset": offset}))

    def get_policy(self, policy_id):
        return self._req("GET", "/v1/policies/" + path_segment(policy_id))

    def update_policy(self, policy_id, enabled=None, priority=None):
        """PATCH /v1/policies/{id}: enable/disable or move it in the stack."""
        return self._req("PATCH", "/v1/policies/" + path_segment(policy_id),
                         _drop_none({"enabled": enabled, "priority": priority}))

    def evaluate_policy(self, budget_cap, callee_agent_id=None, capability=None,
                        caller_agent_id=None):
        """POST /v1/policies/evaluate: the decision the stack would make now
        (a dry run; the caller defaults to this client's agent)."""
        body = _drop_none({
            "caller_agent_id": caller_agent_id or self.agent_id,
            "callee_agent_id": callee_agent_id, "capability": capability,
            "budget_cap_usd": _usd(budget_cap, "budget_cap")})
        return self._req("POST", "/v1/policies/evaluate", body, mode="safe")

    # -- audit --------------------------------------------------------------

    def audit_log(self, delegation_id=None, agent_id=None, decision=None, from_=None,
                  to=None, limit=None, offset=None):
        """GET /v1/audit/log: audit entries, newest first."""
        return self._req("GET", "/v1/audit/log" + query_string(
            {"delegation_id": delegation_id, "agent_id": agent_id, "decision": decision,
             "from": from_, "to": to, "limit": limit, "offset": offset}))

    # -- async twins ----------------------------------------------------------

    ame = _async_twin(me)
    aregister = _async_twin(register)
    aupdate_agent = _async_twin(update_agent)
    aget_agent = _async_twin(get_agent)
    alist_agents = _async_twin(list_agents)
    apause_agent = _async_twin(pause_agent)
    aactivate_agent = _async_twin(activate_agent)
    adiscover = _async_twin(discover)
    adelegate = _async_twin(delegate)
    aget_delegation = _async_twin(get_delegation)
    alist_delegations = _async_twin(list_delegations)
    aapprove = _async_twin(approve)
    areject = _async_twin(reject)
    aupload_policy = _async_twin(upload_policy)
    alist_policies = _async_twin(list_policies)
    aget_policy = _async_twin(get_policy)
    aupdate_policy = _async_twin(update_policy)
    aevaluate_policy = _async_twin(evaluate_policy)
    aaudit_log = _async_twin(audit_log)


# A Result is returned for every object answer; re-exported for type checks.
__all__ = ["NexraClient", "Result", "IDEMPOTENT"]
