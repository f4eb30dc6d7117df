"""Discovery (issue 7): POST /v1/capabilities/discover on SQLite and
PostgreSQL: semantic matches beyond shared words, every filter, cross-org
visibility, ordering by each signal when the others tie, the change feed
across processes, and the embeddings provider with its fallback (a local
fake OpenAI-compatible server that can be told to fail)."""
import http.server
import json
import math
import re
import sqlite3
import threading
import time

import pytest

from helpers import (Api, agent_body, expect_error, expect_ok, register_org, unique)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
COMPONENTS = {"relevance", "lexical", "semantic", "budget_fit", "latency_fit", "trust"}


def new_client(server):
    _, live, _ = register_org(server)
    return Api(server, live)


def reg(client, agent_id=None, **kw):
    agent_id = agent_id or unique("ag")
    d = expect_ok(client.post("/v1/agents/register", agent_body(agent_id, **kw)), 201)
    return agent_id, d


def discover(client, **body):
    r = client.post("/v1/capabilities/discover", body)
    return expect_ok(r), r.json()["meta"]


def ids(results):
    return [x["agent_id"] for x in results]


def wait_for(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- embedding at registration ---------------------------------------------

def test_register_and_update_give_embedding_ids(server):
    c = new_client(server)
    aid, d = reg(c)
    assert UUID_RE.match(d["embedding_id"]), d
    body = agent_body(aid, description="Translates contracts into German")
    got = expect_ok(c.put(f"/v1/agents/{aid}", body))
    assert UUID_RE.match(got["embedding_id"]) and got["embedding_id"] != d["embedding_id"]
    # the new text is what is found
    res, _ = discover(c, query="german translation of legal documents")
    assert ids(res)[:1] == [aid]


def test_meaning_beyond_shared_words(server):
    c = new_client(server)
    target, _ = reg(c, name="Competitive Intelligence", description="Researches companies")
    for name, desc, cap in [
        ("Translator", "Translates documents into French", "generation"),
        ("Invoice checker", "Validates billing statements for mistakes", "validation"),
        ("Mailer", "Sends email campaigns to customers", "execution"),
        ("Image maker", "Draws illustrations from prompts", "generation"),
    ]:
        reg(c, name=name, description=desc, capability_type=cap)
    res, meta = discover(c, query="look into firms")
    assert ids(res)[0] == target, res
    top = res[0]["score_components"]
    assert top["lexical"] == 0 and top["semantic"] > 0
    assert meta["embeddings"] == {"model": "nexra-builtin-wordnet-1", "fallback": False}


def test_result_fields_and_score_formula(server):
    c = new_client(server)
    aid, _ = reg(c, description="Summarizes quarterly earnings reports",
                 pricing={"per_call_usd": 0.25}, sla={"p99_latency_ms": 1000,
                                                      "availability": 0.99})
    res, _ = discover(c, query="summarize earnings", budget_cap_usd=0.5, max_latency_ms=4000)
    x = res[0]
    assert x["agent_id"] == aid
    assert "webhook_url" not in x and "webhook_secret" not in x
    for f in ("org_id", "name", "description", "capability_type", "pricing", "sla",
              "input_schema", "output_schema", "is_public", "status", "trust_score"):
        assert f in x, f
    comp = x["score_components"]
    assert set(comp) == COMPONENTS
    assert comp["budget_fit"] == pytest.approx(1 - 0.25 / 0.5)
    assert comp["latency_fit"] == pytest.approx(1 - 1000 / 4000)
    assert comp["trust"] == pytest.approx(0.5 * 0.8)  # probationary
    assert comp["lexical"] == 1 and comp["semantic"] == 1  # the only candidate
    assert comp["relevance"] == pytest.approx(0.5 * comp["lexical"] + 0.5 * comp["semantic"])
    assert x["score"] == pytest.approx(0.7 * comp["relevance"] + 0.1 * comp["budget_fit"] +
                                       0.1 * comp["latency_fit"] + 0.1 * comp["trust"])


# --- filters ---------------------------------------------------------------

DESC = "Scores sales leads from CRM exports"


def test_filter_capability_type(server):
    c = new_client(server)
    a, _ = reg(c, description=DESC, capability_type="analysis")
    b, _ = reg(c, description=DESC, capability_type="enrichment")
    res, _ = discover(c, query="score sales leads", capability_type="enrichment")
    assert ids(res) == [b]
    res, _ = discover(c, query="score sales leads")
    assert set(ids(res)) == {a, b}


def test_filter_budget(server):
    c = new_client(server)
    cheap, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.1})
    exact, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.5})
    dear, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.500001})
    res, _ = discover(c, query="lead scoring", budget_cap_usd=0.5)
    assert set(ids(res)) == {cheap, exact}
    res, _ = discover(c, budget_cap_usd=0)
    assert res == []


def test_filter_latency(server):
    c = new_client(server)
    fast, _ = reg(c, description=DESC, sla={"p99_latency_ms": 800, "availability": 0.9})
    edge, _ = reg(c, description=DESC, sla={"p99_latency_ms": 2000, "availability": 0.9})
    slow, _ = reg(c, description=DESC, sla={"p99_latency_ms": 2001, "availability": 0.9})
    res, _ = discover(c, query="lead scoring", max_latency_ms=2000)
    assert set(ids(res)) == {fast, edge}


def test_filter_exclude_and_limit(server):
    c = new_client(server)
    agents = [reg(c, description=DESC)[0] for _ in range(8)]
    res, _ = discover(c, query="sales leads")
    assert len(res) == 5  # the default limit
    res, _ = discover(c, query="sales leads", limit=100)
    assert set(ids(res)) == set(agents)
    res, _ = discover(c, query="sales leads", limit=100, exclude_agents=agents[:3])
    assert set(ids(res)) == set(agents[3:])
    res, _ = discover(c, query="sales leads", limit=1)
    assert len(res) == 1


def test_paused_agents_never_appear(server):
    c = new_client(server)
    a, _ = reg(c, description=DESC)
    b, _ = reg(c, description=DESC)
    expect_ok(c.delete(f"/v1/agents/{a}"))
    for body in ({"query": "sales leads"}, {}, {"query": DESC, "limit": 100}):
        res, _ = discover(c, **body)
        assert a not in ids(res) and b in ids(res)
    expect_ok(c.post(f"/v1/agents/{a}/activate"))
    res, _ = discover(c, query="sales leads")
    assert a in ids(res)


def test_empty_query_ranks_by_other_signals(server):
    c = new_client(server)
    dear, _ = reg(c, description="Writes poems", pricing={"per_call_usd": 2})
    cheap, _ = reg(c, description="Audits firewalls", pricing={"per_call_usd": 0.01})
    for body in ({}, {"query": ""}, {"query": None}, {"query": "the of and"}):
        res, _ = discover(c, **body)
        assert ids(res) == [cheap, dear], body
        assert set(res[0]["score_components"]) == {"budget_fit", "latency_fit", "trust"}
        comp = res[0]["score_components"]
        assert res[0]["score"] == pytest.approx(
            (comp["budget_fit"] + comp["latency_fit"] + comp["trust"]) / 3)


# --- cross-org -------------------------------------------------------------

def test_cross_org_visibility(server):
    word = unique("zq").replace("-", "")  # a word no other test uses
    mine = new_client(server)
    other = new_client(server)
    own, _ = reg(mine, description=f"Checks {word} compliance documents")
    pub, _ = reg(other, description=f"Checks {word} compliance documents", is_public=True)
    priv, _ = reg(other, description=f"Checks {word} compliance documents", is_public=False)
    queries = [{"query": f"{word} compliance"}, {"query": f"Checks {word} compliance documents"},
               {"query": "verify regulatory paperwork"}, {}, {"query": priv}]
    for q in queries:
        res, _ = discover(mine, limit=100, **q)
        assert pub not in ids(res) and priv not in ids(res), q
        res, _ = discover(mine, limit=100, include_cross_org=True, **q)
        assert priv not in ids(res), q
    res, _ = discover(mine, query=f"{word} compliance", include_cross_org=True, limit=100)
    assert {own, pub} <= set(ids(res))
    x = next(x for x in res if x["agent_id"] == pub)
    assert x["org_id"] != next(x for x in res if x["agent_id"] == own)["org_id"]
    # exclude_agents names the caller's own agents only
    res, _ = discover(mine, query=f"{word} compliance", include_cross_org=True,
                      exclude_agents=[pub], limit=100)
    assert pub in ids(res)


# --- ordering by each signal when the others tie ----------------------------

def test_order_by_budget_fit(server):
    c = new_client(server)
    a, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.3})
    b, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.1})
    d, _ = reg(c, description=DESC, pricing={"per_call_usd": 0.2})
    for body in ({"query": "sales leads", "budget_cap_usd": 0.5}, {"query": "sales leads"}, {}):
        res, _ = discover(c, **body)
        assert ids(res) == [b, d, a], body


def test_order_by_latency_fit(server):
    c = new_client(server)
    a, _ = reg(c, description=DESC, sla={"p99_latency_ms": 3000, "availability": 0.9})
    b, _ = reg(c, description=DESC, sla={"p99_latency_ms": 1000, "availability": 0.9})
    d, _ = reg(c, description=DESC, sla={"p99_latency_ms": 2000, "availability": 0.9})
    for body in ({"query": "sales leads", "max_latency_ms": 5000}, {"query": "sales leads"}, {}):
        res, _ = discover(c, **body)
        assert ids(res) == [b, d, a], body


def set_trust(server, org_agent_status_trust):
    """Trust changes only by settlement (docs/trust.md); the ordering test
    sets it in the database the way settlement does (one UPDATE of the
    agents row), then makes one write through the API so the server's
    change stamp moves (a SQLite write from outside the server does not
    touch the shared counter)."""
    if server.backend == "sqlite":
        db = sqlite3.connect(server.sqlite_path, timeout=10)
        for org, agent, status, trust in org_agent_status_trust:
            db.execute("UPDATE agents SET status = ?, trust_score = ? WHERE org_id = ? "
                       "AND agent_id = ?", (status, trust, org, agent))
        db.commit()
        db.close()
    else:
        for org, agent, status, trust in org_agent_status_trust:
            server.pg.psql(server.pg_dbname,
                           f"UPDATE agents SET status = '{status}', trust_score = {trust} "
                           f"WHERE org_id = '{org}' AND agent_id = '{agent}'")


def test_order_by_trust(server):
    org, live, _ = register_org(server)
    c = Api(server, live)
    a, _ = reg(c, description=DESC)
    b, _ = reg(c, description=DESC)
    d, _ = reg(c, description=DESC)
    e, _ = reg(c, description=DESC)
    set_trust(server, [(org, a, "active", 0.6), (org, b, "active", 0.9),
                       (org, d, "active", 0.75), (org, e, "probationary", 0.9)])
    reg(c, description="Unrelated gardening tips")  # moves the change stamp
    for body in ({"query": "sales leads"}, {}):
        res, _ = discover(c, **body)
        order = [x for x in ids(res) if x in (a, b, d, e)]
        # probationary 0.9 counts as 0.72: below active 0.75
        assert order == [b, d, e, a], (body, res)


def test_order_by_relevance(server):
    c = new_client(server)
    exact, _ = reg(c, name="Lead scorer", description="Scores sales leads from CRM exports")
    near, _ = reg(c, name="Pipeline helper", description="Cleans sales spreadsheets")
    res, _ = discover(c, query="score sales leads")
    assert ids(res)[0] == exact
    assert res[0]["score_components"]["relevance"] > res[1]["score_components"]["relevance"]


# --- validation --------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "5"}, "limit"),
    ({"budget_cap_usd": -1}, "budget_cap_usd"),
    ({"budget_cap_usd": 0.1234567}, "budget_cap_usd"),
    ({"max_latency_ms": 0}, "max_latency_ms"),
    ({"max_latency_ms": 1.5}, "max_latency_ms"),
    ({"capability_type": "astrology"}, "capability_type"),
    ({"exclude_agents": "a"}, "exclude_agents"),
    ({"exclude_agents": [1]}, "exclude_agents[0]"),
    ({"exclude_agents": ["bad id"]}, "exclude_agents[0]"),
    ({"exclude_agents": [f"a{i}" for i in range(101)]}, "exclude_agents"),
    ({"include_cross_org": "yes"}, "include_cross_org"),
    ({"query": 5}, "query"),
    ({"query": "x" * 1001}, "query"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_requests(server, body, field):
    c = new_client(server)
    expect_error(c.post("/v1/capabilities/discover", body), 400, "VALIDATION_ERROR", field)


def test_needs_a_key(server):
    expect_error(Api(server).post("/v1/capabilities/discover", {}), 401, "UNAUTHORIZED")


def test_query_syntax_is_just_words(server):
    c = new_client(server)
    aid, _ = reg(c, description="Parses OR merges NEAR quotes")
    for q in ['"unbalanced', "NEAR(a b)", "a AND OR NOT", "*", "x:y", "a | b & !c", "'); --",
              "日本語の検索", "\u00e9t\u00e9"]:
        discover(c, query=q)


# --- across processes ----------------------------------------------------------

def test_two_processes_converge(server, start_server):
    """A second server on the same database sees the first one's writes at
    its next discover (and the other way round)."""
    other = start_server("--dev", db=server.db, backend=server.backend)
    org, live, _ = register_org(server)
    c1, c2 = Api(server, live), Api(other, live)
    word = unique("kx").replace("-", "")
    aid, _ = reg(c1, description=f"Forecasts {word} demand")
    res, _ = discover(c2, query=f"{word} demand forecast")
    assert ids(res) == [aid]
    expect_ok(c1.delete(f"/v1/agents/{aid}"))
    res, _ = discover(c2, query=f"{word} demand forecast")
    assert res == []
    expect_ok(c2.post(f"/v1/agents/{aid}/activate"))
    bid, _ = reg(c2, description=f"Predicts {word} demand")
    res, _ = discover(c1, query=f"{word} demand", limit=10)
    assert set(ids(res)) == {aid, bid}


def test_index_rebuilt_at_start(server, start_server):
    srv = start_server("--dev", backend=server.backend)
    org, live, _ = register_org(srv)
    c = Api(srv, live)
    target, _ = reg(c, description="Researches companies")
    reg(c, description="Sends email campaigns")
    srv.stop()
    srv2 = start_server.restart_of(srv)
    res, _ = discover(Api(srv2, live), query="look into firms")
    assert ids(res)[0] == target


# --- the embeddings provider ---------------------------------------------------

class FakeEmbeddings:
    """An OpenAI-compatible /v1/embeddings server. Its vectors say which of
    a few topics the text is about (one dimension per topic word, plus a
    constant), so a provider ranking is recognisable; `fail` makes it
    answer 500."""
    TOPICS = ["weather", "invoice", "poem", "zebra"]

    def __init__(self):
        self.fail = False
        self.requests = []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                fake.requests.append((self.path, self.headers.get("Authorization"), body))
                if fake.fail:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"boom")
                    return
                text = body.get("input", "").lower()
                v = [1.0 if t in text else 0.0 for t in fake.TOPICS] + [0.05]
                norm = math.sqrt(sum(x * x for x in v))
                out = json.dumps({"object": "list", "model": body.get("model"),
                                  "data": [{"object": "embedding", "index": 0,
                                            "embedding": [x / norm for x in v]}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/embeddings"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def embedded(self, model, needle):
        return any(b.get("model") == model and needle in b.get("input", "")
                   for _, _, b in self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_embeddings():
    f = FakeEmbeddings()
    yield f
    f.close()


def test_provider_and_fallback(server, start_server, fake_embeddings):
    fe = fake_embeddings
    srv = start_server("--dev", "--embeddings-url", fe.url, "--embeddings-model", "fake-1",
                       backend=server.backend, env={"NEXRA_EMBEDDINGS_API_KEY": "sk-test"})
    org, live, _ = register_org(srv)
    c = Api(srv, live)
    zebra, _ = reg(c, name="Stripes", description="Knows everything about the zebra")
    poem, _ = reg(c, name="Verses", description="Writes a poem on request")
    # the provider embeds each agent in the background
    wait_for(lambda: fe.embedded("fake-1", "zebra") and fe.embedded("fake-1", "poem"),
             what="provider embeddings")
    assert all(auth == "Bearer sk-test" for _, auth, _ in fe.requests)

    def provider_ranked():
        res, meta = discover(c, query="zebra")
        return (meta["embeddings"] == {"model": "fake-1", "fallback": False} and
                ids(res)[0] == zebra and res[0]["score_components"]["semantic"] == 1 and res)
    wait_for(provider_ranked, what="discover ranked with provider vectors")

    fe.fail = True
    res, meta = discover(c, query="poetry writer")
    assert meta["embeddings"]["fallback"] is True
    assert meta["embeddings"]["model"] == "nexra-builtin-wordnet-1"
    assert "500" in meta["embeddings"]["reason"], meta
    assert ids(res)[0] == poem  # the built-in embedder still answers
    # registration does not wait on the provider
    aid, d = reg(c, description="Forecasts the weather")
    assert UUID_RE.match(d["embedding_id"])
    res, meta = discover(c, query="weather forecast")
    assert ids(res)[0] == aid and meta["embeddings"]["fallback"] is True


def test_provider_unreachable_falls_back(server, start_server):
    srv = start_server("--dev", "--embeddings-url", "http://127.0.0.1:9/v1/embeddings",
                       "--embeddings-model", "m", backend=server.backend)
    org, live, _ = register_org(srv)
    c = Api(srv, live)
    target, _ = reg(c, description="Researches companies")
    res, meta = discover(c, query="look into firms")
    assert ids(res) == [target]
    assert meta["embeddings"]["fallback"] is True and "unreachable" in meta["embeddings"]["reason"]


def test_model_switch_reembeds(server, start_server, fake_embeddings):
    fe = fake_embeddings
    srv = start_server("--dev", "--embeddings-url", fe.url, "--embeddings-model", "fake-1",
                       backend=server.backend)
    org, live, _ = register_org(srv)
    reg(Api(srv, live), description="Counts zebra herds")
    wait_for(lambda: fe.embedded("fake-1", "zebra"), what="first model")
    srv.stop()
    srv2 = start_server.restart_of(srv, "--dev", "--embeddings-url", fe.url,
                                   "--embeddings-model", "fake-2")
    wait_for(lambda: fe.embedded("fake-2", "zebra"), what="re-embedding with the new model")
    c = Api(srv2, live)
    res, meta = wait_for(lambda: (lambda r: r if r[0] and
                                  r[0][0]["score_components"]["semantic"] == 1 else None)(
        discover(c, query="zebra")), what="ranking with fake-2 vectors")
    assert meta["embeddings"]["model"] == "fake-2"


def test_provider_flags_checked(server, start_server):
    srv = start_server("--embeddings-url", "ftp://x/v1", "--embeddings-model", "m",
                       backend="sqlite", start=False)
    srv._spawn("127.0.0.1:0")
    assert srv.wait(10) == 2
    assert "--embeddings-url" in srv.logs()
    srv2 = start_server("--embeddings-url", "http://127.0.0.1:9/v1/embeddings",
                        backend="sqlite", start=False)
    srv2._spawn("127.0.0.1:0")
    assert srv2.wait(10) == 2
    assert "--embeddings-model" in srv2.logs()
