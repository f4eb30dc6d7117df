"""The CLI (issue 2 point 10) as docs/cli.md describes it, driven against the
real server: `nexra org|agents|keys ...` with --server/NEXRA_SERVER and
NEXRA_API_KEY."""
import json
import os
import subprocess

import pytest

from helpers import (ANY_KEY_RE, Api, agent_body, expect_ok, free_port, register_org,
                     unique)


class Cli:
    def __init__(self, binary, server_url=None, key=None, env=None):
        self.binary = binary
        self.server_url = server_url
        self.key = key
        self.env = env or {}

    def run(self, *args, key=True, server_flag=True, env=None, stdin=None, timeout=30):
        e = {k: v for k, v in os.environ.items() if not k.startswith("NEXRA_")}
        if key and self.key:
            e["NEXRA_API_KEY"] = self.key
        e.update(self.env)
        e.update(env or {})
        argv = [self.binary]
        if server_flag and self.server_url:
            argv += ["--server", self.server_url]
        argv += list(args)
        p = subprocess.run(argv, env=e, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        assert rc == 0, f"nexra {' '.join(args)} -> {rc}\nstdout: {out}\nstderr: {err}"
        return json.loads(out)


def test_cli_org_register_and_me(server, nexra_bin):
    cli = Cli(nexra_bin, server.url)
    name = unique("cli-org")
    rc, out, err = cli.run("org", "register", "--name", name, "--plan", "starter")
    assert rc == 0, err
    d = json.loads(out)
    assert d["name"] == name and d["plan"] == "starter"
    assert d["api_key"].startswith("nx_live_") and d["test_api_key"].startswith("nx_test_")
    assert "once" in err, f"no reminder that keys are shown once: {err!r}"
    # server from the environment, global flag after the group
    me = Cli(nexra_bin, key=d["api_key"]).ok("org", "me", env={"NEXRA_SERVER": server.url})
    assert me["org_id"] == d["org_id"]
    rc, out, _ = Cli(nexra_bin, key=d["api_key"]).run(
        "org", "me", "--server", server.url)
    assert rc == 0 and json.loads(out)["org_id"] == d["org_id"]
    rc, out, _ = Cli(nexra_bin, key=d["api_key"]).run(
        "org", "me", f"--server={server.url}/")
    assert rc == 0 and json.loads(out)["org_id"] == d["org_id"]


def test_cli_org_register_bad_plan(server, nexra_bin):
    rc, out, err = Cli(nexra_bin, server.url).run("org", "register", "--name", "x",
                                                  "--plan", "enterprise")
    assert rc == 1, (rc, out, err)
    assert "error: VALIDATION_ERROR:" in err
    assert '"field":"plan"' in err.replace(" ", "")
    assert out == ""


def test_cli_agents_lifecycle(server, nexra_bin, tmp_path):
    _, live, _ = register_org(server)
    cli = Cli(nexra_bin, server.url, live)
    agent_id = unique("cli-agent")
    f = tmp_path / "agent.json"
    f.write_text(json.dumps(agent_body(agent_id)))
    d = cli.ok("agents", "register", str(f))
    assert d["agent_id"] == agent_id and d["status"] == "probationary"
    # from stdin
    other = unique("cli-stdin")
    d = cli.ok("agents", "register", "-", stdin=json.dumps(
        agent_body(other, capability_type="analysis")).encode())
    assert d["agent_id"] == other

    got = cli.ok("agents", "get", agent_id)
    assert got["agent_id"] == agent_id and "webhook_secret" not in got
    lst = cli.ok("agents", "list")
    assert [x["agent_id"] for x in lst] == [agent_id, other]
    lst = cli.ok("agents", "list", "--capability-type", "analysis")
    assert [x["agent_id"] for x in lst] == [other]
    rc, out, err = cli.run("agents", "list", "--limit", "1")
    assert rc == 0 and len(json.loads(out)) == 1
    assert "--offset 1" in err, f"no next-page note: {err!r}"

    paused = cli.ok("agents", "pause", agent_id)
    assert paused["status"] == "paused"
    lst = cli.ok("agents", "list", "--status=paused")
    assert [x["agent_id"] for x in lst] == [agent_id]
    act = cli.ok("agents", "activate", agent_id)
    assert act["status"] == "probationary"

    f.write_text(json.dumps(agent_body(agent_id, name="Renamed by CLI")))
    upd = cli.ok("agents", "update", agent_id, str(f))
    assert upd["name"] == "Renamed by CLI"
    assert expect_ok(Api(server, live).get(f"/v1/agents/{agent_id}"))["name"] == "Renamed by CLI"


def test_cli_error_output(server, nexra_bin, tmp_path):
    _, live, _ = register_org(server)
    cli = Cli(nexra_bin, server.url, live)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(agent_body("cli-bad", webhook_secret="replace-with-32-char-secret")))
    rc, out, err = cli.run("agents", "register", str(f))
    assert rc == 1, (rc, out, err)
    assert out == ""
    assert "error: VALIDATION_ERROR:" in err and "32" in err
    assert "details:" in err and "webhook_secret" in err
    rc, out, err = cli.run("agents", "get", "no-such-agent")
    assert rc == 1 and "error: NOT_FOUND:" in err
    # an id cannot select another route
    rc, out, err = cli.run("agents", "get", "../keys")
    assert rc == 1, (rc, out)
    rc, out, err = cli.run("agents", "get", "x?status=paused")
    assert rc == 1, (rc, out)
    rc, _, err = cli.run("agents", "register", str(tmp_path / "missing.json"))
    assert rc == 1 and err


def test_cli_keys(server, nexra_bin):
    _, live, test = register_org(server)
    cli = Cli(nexra_bin, server.url, live)
    k = cli.ok("keys", "create", "--test", "--name", "ci")
    assert k["kind"] == "test" and k["name"] == "ci" and k["api_key"].startswith("nx_test_")
    k2 = cli.ok("keys", "create")
    assert k2["kind"] == "live"
    keys = cli.ok("keys", "list")
    assert {x["key_id"] for x in keys} >= {k["key_id"], k2["key_id"]}
    assert len(keys) == 4
    assert not ANY_KEY_RE.search(json.dumps(keys))
    rv = cli.ok("keys", "revoke", k["key_id"])
    assert rv["key_id"] == k["key_id"] and rv["revoked_at"]
    rc, _, err = Cli(nexra_bin, server.url, k["api_key"]).run("org", "me")
    assert rc == 1 and "UNAUTHORIZED" in err
    rc, _, err = Cli(nexra_bin, server.url, test).run("keys", "create")
    assert rc == 1 and "FORBIDDEN" in err


def test_cli_agent_id_flag(server, nexra_bin):
    _, live, _ = register_org(server)
    a = Api(server, live)
    agent_id = unique("cli-x")
    expect_ok(a.post("/v1/agents/register", agent_body(agent_id)), 201)
    cli = Cli(nexra_bin, server.url, live)
    cli.ok("--agent-id", agent_id, "org", "me")
    expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    rc, _, err = cli.run("org", "me", "--agent-id", agent_id)
    assert rc == 1 and "FORBIDDEN" in err
    rc, _, err = cli.run("org", "me", env={"NEXRA_AGENT_ID": agent_id})
    assert rc == 1 and "FORBIDDEN" in err


@pytest.mark.parametrize("args,with_key", [
    (("org", "me"), False),                       # NEXRA_API_KEY unset
    (("org", "me", "--api-key", "nx_live_x"), True),
    (("bogus",), True),
    (("agents", "frobnicate"), True),
    (("agents", "get"), True),
    (("agents", "list", "--colour", "red"), True),
    (("org", "register", "--name", "x"), True),
])
def test_cli_usage_errors(server, nexra_bin, args, with_key):
    cli = Cli(nexra_bin, server.url, "nx_live_" + "a" * 59)
    rc, out, err = cli.run(*args, key=with_key)
    assert rc == 2, (rc, out, err)
    assert err.startswith("error:") or "usage" in err


def test_cli_help(nexra_bin):
    rc, out, _ = Cli(nexra_bin).run("help")
    assert rc == 0 and "agents" in out and "keys" in out and "org" in out


def test_cli_unreachable_server(nexra_bin):
    port = free_port()
    rc, out, err = Cli(nexra_bin, f"http://127.0.0.1:{port}", "nx_live_" + "a" * 59).run(
        "org", "me")
    assert rc == 3, (rc, out, err)


def test_cli_admin_token(start_server, nexra_bin):
    srv = start_server("--signup", "admin", env={"NEXRA_ADMIN_TOKEN": "secret"})
    cli = Cli(nexra_bin, srv.url)
    rc, _, err = cli.run("org", "register", "--name", "n", "--plan", "growth")
    assert rc == 1 and "FORBIDDEN" in err
    d = cli.ok("org", "register", "--name", "n", "--plan", "growth",
               env={"NEXRA_ADMIN_TOKEN": "secret"})
    assert d["api_key"].startswith("nx_live_")
    d = cli.ok("org", "register", "--name", "n", "--plan", "growth", "--admin-token", "secret")
    assert d["api_key"].startswith("nx_live_")


def test_cli_discover(server, nexra_bin):
    """`nexra discover "research company background" --type research --budget 0.5`
    (issue 7 point 5) and every option it maps to the request."""
    _, live, _ = register_org(server)
    a = Api(server, live)
    cheap = unique("r")
    dear = unique("r")
    other = unique("w")
    expect_ok(a.post("/v1/agents/register", agent_body(
        cheap, description="Researches companies and their background",
        pricing={"per_call_usd": 0.2})), 201)
    expect_ok(a.post("/v1/agents/register", agent_body(
        dear, description="Researches companies and their background",
        pricing={"per_call_usd": 0.75})), 201)
    expect_ok(a.post("/v1/agents/register", agent_body(
        other, description="Writes company background pages", capability_type="generation",
        sla={"p99_latency_ms": 9000, "availability": 0.9})), 201)
    cli = Cli(nexra_bin, server.url, live)
    res = cli.ok("discover", "research company background", "--type", "research",
                 "--budget", "0.5")
    assert [x["agent_id"] for x in res] == [cheap]
    assert res[0]["score_components"]["budget_fit"] == pytest.approx(1 - 0.2 / 0.5)
    res = cli.ok("discover", "company background", "--limit", "10", "--exclude", cheap,
                 "--max-latency", "5000", "--cross-org")
    assert {x["agent_id"] for x in res} == {dear}
    res = cli.ok("discover", "")
    assert {x["agent_id"] for x in res} == {cheap, dear, other}
    rc, out, err = cli.run("discover", "x", "--budget", "half")
    assert rc == 2 and "--budget" in err
    rc, out, err = cli.run("discover", "x", "--limit", "0")
    assert rc == 1 and "VALIDATION_ERROR" in err and "limit" in err
    rc, out, err = cli.run("discover")
    assert rc == 2
