"""`nexra policy ...` (issue 3 point 7): apply, list, get, enable/disable,
eval against the real server, and the offline check with the API's
messages."""
import subprocess

from helpers import Api, expect_ok, register_org, unique
from test_cli import Cli

GOOD = "rules:\n  - capability: research\n    max_budget_usd: 0.50\n"
BAD = "rules:\n  - capability: research\n    max_budget_usd: 0.50\n    min_trust_score: 1.5\n"
BAD_MSG = "4:22: rules[0].min_trust_score: must be between 0 and 1, got 1.5"


def write(tmp_path, text, name="p.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return str(f)


def test_check_is_offline_and_matches_the_api(server, nexra_bin, tmp_path):
    cli = Cli(nexra_bin)  # no server, no key
    rc, out, err = cli.run("policy", "check", write(tmp_path, GOOD), key=False)
    assert (rc, out.strip()) == (0, "ok: 1 rule")
    bad = write(tmp_path, BAD, "bad.yaml")
    rc, out, err = cli.run("policy", "check", bad, key=False)
    assert rc == 1 and err.strip() == f"{bad}:{BAD_MSG}"
    _, key, _ = register_org(server)
    r = Api(server, key).post("/v1/policies", {"name": "x", "yaml": BAD})
    assert r.status_code == 400 and r.json()["error"]["message"] == "yaml: " + BAD_MSG
    rc, _, err = cli.run("policy", "check", str(tmp_path / "missing.yaml"), key=False)
    assert rc == 1 and "missing.yaml" in err


def test_apply_list_get_disable_eval(server, nexra_bin, tmp_path):
    _, key, _ = register_org(server)
    cli = Cli(nexra_bin, server.url, key)
    name = unique("prod")
    p = cli.ok("policy", "apply", "-f", write(tmp_path, GOOD), "--name", name, "--priority", "5")
    assert (p["name"], p["version"], p["priority"], p["enabled"]) == (name, 1, 5, True)
    assert cli.ok("policy", "apply", "-f", write(tmp_path, GOOD), "--name", name)["version"] == 2
    assert [x["policy_id"] for x in cli.ok("policy", "list")] == [p["policy_id"]]
    got = cli.ok("policy", "get", p["policy_id"])
    assert got["yaml"] == GOOD and len(got["versions"]) == 2
    assert cli.ok("policy", "get", p["policy_id"], "--version", "1")["version"] == 1
    d = cli.ok("policy", "eval", "--caller", "sales", "--capability", "research", "--budget", "0.75")
    assert d["decision"] == "block"
    d = cli.ok("policy", "eval", "--caller", "sales", "--capability", "research", "--budget", "0.5")
    assert d["decision"] == "allow"
    assert cli.ok("policy", "disable", p["policy_id"])["enabled"] is False
    d = cli.ok("policy", "eval", "--caller", "sales", "--capability", "research", "--budget", "0.5")
    assert d["decision"] == "block"
    assert cli.ok("policy", "enable", p["policy_id"])["enabled"] is True


def test_apply_refuses_a_bad_file_before_sending(server, nexra_bin, tmp_path):
    _, key, _ = register_org(server)
    cli = Cli(nexra_bin, server.url, key)
    rc, _, err = cli.run("policy", "apply", "-f", write(tmp_path, BAD), "--name", "x")
    assert rc == 1 and BAD_MSG in err
    assert expect_ok(Api(server, key).get("/v1/policies")) == []
    rc, _, err = cli.run("policy", "eval", "--caller", "a", "--capability", "research",
                         "--budget", "1e3")
    assert rc == 2 and "--budget" in err
