"""The seed's Python code blocks ("Initialize the client", "Register your
first agent", "Make your first hire") run as written, apart from the key
and the URLs: the key is a real one, the server's URL comes from
NEXRA_SERVER and the calling agent from NEXRA_AGENT_ID (the client's
documented defaults), and webhook_url points at a local callee.

The seed's own agent requires `company_name` in its input_schema while
its hire sends {"company": ...}: hired directly, that agent refuses the
task (asserted below). The hire block therefore runs in an org that also
has a cheaper research agent accepting {"company"}, which hire() chooses
(docs/sdk.md)."""
import asyncio

import pytest

from sdkorg import Org
from helpers import unique

import nexra_sdk as nx

QUICKSTART_POLICY = "rules:\n  - capability: research\n    max_budget_usd: 0.50\n"


def seed_answer(d):
    return {"result": {"summary": f"{d.task['company']} is a...", "sources": ["10-K 2025"]},
            "cost_usd": 0.14}


def test_seed_quickstart_as_written(server, monkeypatch):
    setup = Org(server.url, policy=QUICKSTART_POLICY)
    try:
        acme = setup.callee(fn=seed_answer, agent_id=unique("acme-researcher"), price=0.10)
        local_url = acme.server.url
        monkeypatch.setenv("NEXRA_SERVER", server.url)
        monkeypatch.setenv("NEXRA_AGENT_ID", setup.caller_id)
        key = setup.key

        # --- Initialize the client ------------------------------------------
        from nexra_sdk import NexraClient

        client = NexraClient(api_key=key)

        # --- Register your first agent --------------------------------------
        client.register(
            agent_id="research-agent-v2",
            name="Competitive Research Agent",
            description="Researches competitors and company background",
            capability_type="research",
            webhook_url=local_url,
            pricing={"per_call_usd": 0.15},
            sla={"p99_latency_ms": 3000, "availability": 0.99},
            input_schema={"type": "object", "properties": {"company_name": {"type": "string"}}, "required": ["company_name"]},
            output_schema={"type": "object", "properties": {"summary": {"type": "string"}, "sources": {"type": "array"}}}
        )

        # --- Make your first hire -------------------------------------------
        async def first_hire():
            result = await client.hire(
                capability="research",
                task={"company": "Acme Corp"},
                budget_cap=0.25
            )
            return result
        result = asyncio.run(first_hire())

        # "Returns:" the seed's dict, with these values
        assert set(result) == {"delegation_id", "result", "cost_usd", "audit_event"}
        assert result["delegation_id"].startswith("del_")
        assert result["result"] == {"summary": "Acme Corp is a...", "sources": ["10-K 2025"]}
        assert result["cost_usd"] == 0.14
        assert isinstance(result["audit_event"], int) and result["audit_event"] >= 1
        assert result.meta["request_id"].startswith("req_")
        assert result.callee_agent_id == acme.agent_id
        assert acme.received[0].task == {"company": "Acme Corp"} and not acme.refused

        agent = client.get_agent("research-agent-v2")
        assert agent["status"] == "probationary" and agent["webhook_url"] == local_url
        # the seed's agent itself refuses the seed's task (company vs company_name)
        with pytest.raises(nx.ValidationError) as ei:
            asyncio.run(client.hire(capability="research", task={"company": "Acme Corp"},
                                    budget_cap=0.25, callee_agent_id="research-agent-v2"))
        assert ei.value.field == "task.input"
    finally:
        setup.close()
