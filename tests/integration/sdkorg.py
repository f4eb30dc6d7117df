"""Shared set-up for the SDK suites (test_sdk*.py): puts sdk/python on the
import path and builds an org whose callees are real webhook endpoints
served by the SDK's own callee helper (nexra_sdk.WebhookServer), so every
delegation in these tests is verified (signature and token) on arrival."""
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_PATH = os.path.join(HERE, "..", "..", "sdk", "python")
if SDK_PATH not in sys.path:
    sys.path.insert(0, SDK_PATH)

from nexra_sdk import CalleeError, NexraClient, WebhookServer  # noqa: E402

from callee import OPEN_POLICY  # noqa: E402,F401
from helpers import unique  # noqa: E402

# The seed's policy, as the demo uploads it.
with open(os.path.join(HERE, "..", "..", "examples", "seed-policy.yaml")) as f:
    SEED_POLICY = f.read()
IN_SCHEMA = {"type": "object", "required": ["company"],
             "properties": {"company": {"type": "string"}}}
OUT_SCHEMA = {"type": "object", "required": ["summary"],
              "properties": {"summary": {"type": "string"}, "sources": {"type": "array"}}}


def summarize(d):
    return {"result": {"summary": f"{d.task.get('company', '?')} is a company",
                       "sources": ["https://example.com"]},
            "cost_usd": 0.04, "llm_tokens": 120}


class Callee:
    """One callee agent: its registration and its webhook server."""

    def __init__(self, org, fn, agent_id, capability, price, in_schema, out_schema, sla_ms):
        self.agent_id = agent_id
        self.fn = fn
        self.received = []  # verified Delegation objects
        self.refused = []   # exceptions the helper refused or caught
        self._lock = threading.Lock()
        self._secret = {}
        self.server = WebhookServer(self._call, lambda: self._secret["s"], agent_id,
                                    on_error=self.refused.append).start()
        self.registration = org.admin.register(
            agent_id=agent_id, name=f"Agent {agent_id}",
            description="Researches companies and markets", capability_type=capability,
            webhook_url=self.server.url, pricing={"per_call_usd": price},
            sla={"p99_latency_ms": sla_ms, "availability": 0.99},
            input_schema=in_schema, output_schema=out_schema)
        self.secret = self.registration["webhook_secret"]
        self._secret["s"] = self.secret

    def _call(self, d):
        with self._lock:
            self.received.append(d)
        return self.fn(d)


class Org:
    def __init__(self, url, policy=OPEN_POLICY, plan="growth", **client_kw):
        self.url = url
        d = NexraClient.register_org(unique("sdk-org"), plan, base_url=url)
        self.org_id = d["org_id"]
        self.key = d["api_key"]
        self.test_key = d["test_api_key"]
        self.admin = NexraClient(api_key=self.key, base_url=url, **client_kw)
        self.caller_id = unique("sales-agent")
        self.admin.register(
            agent_id=self.caller_id, name="Sales Agent", description="Sells things",
            capability_type="other", webhook_url="http://127.0.0.1:9/unused",
            pricing={"per_call_usd": 0}, sla={"p99_latency_ms": 1000, "availability": 0.9},
            input_schema={"type": "object"}, output_schema={"type": "object"})
        self.client = self.admin.as_agent(self.caller_id)
        self.callees = []
        if policy:
            self.policy = self.admin.upload_policy(unique("pol"), policy, priority=10)

    def callee(self, fn=summarize, agent_id=None, capability="research", price=0.05,
               in_schema=IN_SCHEMA, out_schema=OUT_SCHEMA, sla_ms=3000):
        c = Callee(self, fn, agent_id or unique("research"), capability, price, in_schema,
                   out_schema, sla_ms)
        self.callees.append(c)
        return c

    def close(self):
        for c in self.callees:
            c.server.close()


def fail(d):
    raise CalleeError("the research backend is down", status=503)
