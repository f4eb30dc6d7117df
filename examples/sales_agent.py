"""A sales agent (the caller): walks the six steps of a delegation with
the SDK, hiring a research agent through Nexra, and prints what happens.

    NEXRA_API_KEY=nx_live_... NEXRA_SERVER=http://127.0.0.1:8000 \\
        python3 examples/sales_agent.py

It expects examples/research_agent.py to be running (make demo starts
both). Exits 0 when every step did what it should.
"""
import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))

from nexra_sdk import NexraClient, NotFound, PolicyBlocked  # noqa: E402

ME = "sales-agent"
TASK = {"company": "Acme Corp"}
BUDGET_CAP = 0.25
# While research agents are new (trust 0.5, under the seed's 0.85) this
# rule lets sales-agent hire them, within the same budget: an onboarding
# policy, evaluated before the seed's (lower priority number first).
ONBOARDING = """rules:
  - capability: research
    max_budget_usd: 0.50
    min_trust_score: 0.5
    caller_allowlist: [sales-agent]
"""
# The org's monthly budget, in its own policy (no rules: every capability
# falls through to the next policies).
BUDGET = """organization:
  monthly_budget_usd: 5.00
  alert_threshold: 0.80
rules: []
"""


def step(n, title):
    print(f"\n== Step {n}/6: {title} ==", flush=True)


def show(*lines):
    for line in lines:
        print(f"  {line}", flush=True)


def fmt_constraints(fc):
    out = []
    for c in fc:
        if c["constraint"] == "trust":
            out.append(f"trust {c['trust_score']} < min_trust_score {c['min_trust_score']}")
        elif c["constraint"] == "budget":
            out.append(f"budget {c['budget_cap_usd']} > max_budget_usd {c['max_budget_usd']}")
        else:
            out.append(str(c))
    return "; ".join(out)


async def main():
    admin = NexraClient()
    client = admin.as_agent(ME)

    step(1, "Register")
    reg = admin.register(
        agent_id=ME, name="Sales Agent", description="Qualifies leads and writes proposals",
        capability_type="generation", webhook_url="http://127.0.0.1:9/sales-callbacks",
        pricing={"per_call_usd": 0.05}, sla={"p99_latency_ms": 5000, "availability": 0.99},
        input_schema={"type": "object"}, output_schema={"type": "object"})
    show(f"registered {reg['agent_id']}: status {reg['status']} "
         f"(request {reg.request_id}, {reg.latency_ms} ms)")
    callee = admin.get_agent("research-agent-v2")
    show(f"research-agent-v2 is registered: capability {callee['capability_type']}, "
         f"${callee['pricing']['per_call_usd']}/call, p99 {callee['sla']['p99_latency_ms']} ms, "
         f"status {callee['status']}, trust {callee['trust_score']}")

    step(2, "Discover")
    try:
        found = await client.adiscover(query="research company background",
                                       capability_type="research", budget_cap=0.50,
                                       max_latency_ms=10000, limit=5)
        show(f"POST /v1/capabilities/discover found {len(found)} agent(s):")
    except NotFound:
        show("POST /v1/capabilities/discover is not on this server yet (404);",
             "falling back to GET /v1/agents?capability_type=research")
        found = await client.alist_agents(capability_type="research")
    for a in found:
        score = f", score {a['score']:.3f}" if "score" in a else ""
        show(f"- {a['agent_id']}: {a['description']} (${a['pricing']['per_call_usd']}/call, "
             f"trust {a['trust_score']}{score})")
    assert any(a["agent_id"] == "research-agent-v2" for a in found)

    step(3, "Policy check")
    with open(os.path.join(HERE, "seed-policy.yaml")) as f:
        seed = admin.upload_policy("prod-policy-v3", f.read(), priority=10)
    show(f"uploaded the seed's policy as {seed['name']} v{seed['version']} "
         f"({seed['policy_id']}, priority {seed['priority']})")
    budget = admin.upload_policy("org-budget", BUDGET, priority=1)
    show(f"uploaded {budget['name']}: monthly budget $5.00")
    ev = client.evaluate_policy(BUDGET_CAP, callee_agent_id="research-agent-v2")
    show(f"dry run, research-agent-v2 for ${BUDGET_CAP}: {ev['decision'].upper()} "
         f"({fmt_constraints(ev['failed_constraints'])})")
    assert ev["decision"] == "block"
    try:
        await client.hire(capability="research", task=TASK, budget_cap=BUDGET_CAP)
        raise SystemExit("the seed's policy should leave no research agent to hire")
    except NotFound as e:
        show(f"hire by capability -> NotFound: {e.message} "
             f"(considered {e.details.get('considered')}, "
             f"blocked by policy {e.details.get('blocked_by_policy')})")
    try:
        client.delegate("research-agent-v2", TASK, BUDGET_CAP, capability="research")
        raise SystemExit("the seed's policy should block a probationary agent")
    except PolicyBlocked as e:
        show(f"delegate to research-agent-v2 -> PolicyBlocked by {e.policy_ref}: "
             f"{fmt_constraints(e.failed_constraints)}",
             f"  (recorded as {e.delegation_id}, status blocked, nothing sent, not billed)")
    onboarding = admin.upload_policy("research-onboarding", ONBOARDING, priority=5)
    ev = client.evaluate_policy(BUDGET_CAP, callee_agent_id="research-agent-v2")
    show(f"uploaded {onboarding['name']} (priority 5: new research agents, "
         f"sales-agent only, trust >= 0.5)",
         f"dry run again: {ev['decision'].upper()} by {ev['policy_id']} "
         f"rules[{ev['rule_index']}]")
    assert ev["decision"] == "allow"

    step(4, "Delegate")
    show(f"await client.hire(capability='research', task={TASK}, budget_cap={BUDGET_CAP})",
         "Nexra checks the policy, holds the budget, issues a scoped JWT and sends the",
         "signed webhook; the research agent's own log follows:")
    hired = await client.hire(capability="research", task=TASK, budget_cap=BUDGET_CAP)
    d = hired.delegation

    step(5, "Execute")
    show(f"the callee ran the task in its own process and answered; Nexra returned "
         f"(request {hired.request_id}):",
         f"delegation_id: {hired['delegation_id']}",
         f"result: {hired['result']}",
         f"cost_usd: {hired['cost_usd']}, audit_event: {hired['audit_event']}",
         f"callee: {d['callee_agent_id']}, policy: {d['policy_result']['decision']} by "
         f"{d['policy_result'].get('policy_ref')}, latency {d['usage']['latency_ms']} ms")

    step(6, "Settle")
    d = client.get_delegation(hired["delegation_id"])
    show(f"status {d['status']}, charged ${d['usage']['cost_usd']} of the "
         f"${d['budget_cap_usd']} hold (the rest released), "
         f"monthly budget left ${d['budget_remaining_usd']}")
    try:
        entry = admin.audit_log(delegation_id=d["delegation_id"])[0]
        show(f"audit entry #{entry['event_id']}: {entry['decision']} {entry['caller_id']} -> "
             f"{entry['callee_id']}, policy {entry['policy_ref']}, cost ${entry['cost_usd']}, "
             f"budget left ${entry['budget_remaining']}")
    except NotFound:
        show("GET /v1/audit/log is not on this server yet (404); the delegation names its "
             f"audit entry: #{d['audit_event']}")
    td = d["trust_delta"]
    show(f"trust of {d['callee_agent_id']}: {td['before']:.4f} -> {td['after']:.4f} "
         f"(recalculated at settlement)")
    assert d["status"] == "completed" and td["after"] > td["before"]

    print("\n== After the walk: trust earned under the onboarding policy ==", flush=True)
    trust = td["after"]
    while trust < 0.85:
        h = await client.hire(capability="research", task=TASK, budget_cap=BUDGET_CAP)
        trust = h.trust_delta["after"]
        show(f"{h['delegation_id']}: trust {h.trust_delta['before']:.4f} -> {trust:.4f}")
    admin.update_policy(onboarding["policy_id"], enabled=False)
    ev = client.evaluate_policy(BUDGET_CAP, callee_agent_id="research-agent-v2")
    show(f"onboarding policy disabled; the seed's policy alone now says "
         f"{ev['decision'].upper()} (trust {trust:.4f} >= 0.85)")
    assert ev["decision"] == "allow"
    h = await client.hire(capability="research", task=TASK, budget_cap=BUDGET_CAP)
    show(f"hired under {h.delegation['policy_result']['policy_ref']}: {h['delegation_id']}, "
         f"cost ${h['cost_usd']}, audit entry #{h['audit_event']}")
    print("\ndemo: all six steps done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
