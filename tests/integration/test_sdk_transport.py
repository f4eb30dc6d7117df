"""Retry rules of the SDK's transport (docs/sdk.md) for answers the real
server cannot be made to give on demand (a 503, a 500, a proxy's 502
page): a scripted local HTTP peer plays them. Everything else about the
SDK is tested against the real server (test_sdk*.py)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import sdkorg  # noqa: F401

import nexra_sdk as nx
from nexra_sdk import NexraClient


def envelope(code, status):
    return status, json.dumps({"error": {"code": code, "message": code.lower(), "details": {}},
                               "meta": {"request_id": "req_x", "latency_ms": 0}}).encode()


OK = (200, json.dumps({"data": {"ok": True},
                       "meta": {"request_id": "req_ok", "latency_ms": 1}}).encode())
PROXY_502 = (502, b"<html>Bad Gateway</html>")


class Peer:
    def __init__(self):
        self.script = []
        self.seen = []
        peer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                peer.seen.append((self.command, self.path,
                                  self.headers.get("Idempotency-Key")))
                status, body = peer.script.pop(0) if len(peer.script) > 1 else peer.script[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = _do

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def client(peer, **kw):
    c = NexraClient(api_key="nx_live_x", base_url=peer.url, agent_id="a", max_retries=3, **kw)
    c._t.sleep = lambda s: None
    return c


@pytest.mark.parametrize("first", [envelope("UNAVAILABLE", 503), envelope("INTERNAL", 500),
                                   PROXY_502])
def test_reads_are_retried(peer, first):
    peer.script = [first, OK]
    r = client(peer).get_delegation("del_1")
    assert r == {"ok": True} and r.attempts == 2 and len(peer.seen) == 2


def test_delegations_retry_with_one_key(peer):
    peer.script = [envelope("UNAVAILABLE", 503), envelope("CONFLICT", 409), OK]
    r = client(peer).delegate("callee", {"x": 1}, 0.1)
    assert r.attempts == 3
    keys = {k for _, _, k in peer.seen}
    assert len(keys) == 1 and keys.pop().startswith("sdk-")


@pytest.mark.parametrize("answer,exc", [(envelope("CALLEE_FAILED", 502), nx.CalleeFailed),
                                        (envelope("CALLEE_TIMEOUT", 504), nx.CalleeTimeout),
                                        (envelope("CONFLICT", 409), nx.Conflict)])
def test_recorded_outcomes_are_not_retried(peer, answer, exc):
    peer.script = [answer, OK]
    with pytest.raises(exc):
        client(peer).delegate("callee", {"x": 1}, 0.1)
    assert len(peer.seen) == 1


def test_unsafe_writes_are_not_retried_on_5xx(peer):
    peer.script = [envelope("UNAVAILABLE", 503), OK]
    with pytest.raises(nx.Unavailable):
        client(peer).upload_policy("p", "rules: []\n")
    assert len(peer.seen) == 1
    peer.script = [envelope("RATE_LIMITED", 429), OK]  # refused before the handler: safe
    assert client(peer).upload_policy("p", "rules: []\n").attempts == 2


def test_retries_give_up(peer):
    peer.script = [envelope("UNAVAILABLE", 503)]
    with pytest.raises(nx.Unavailable) as ei:
        client(peer).me()
    assert len(peer.seen) == 4 and ei.value.request_id == "req_x"


def test_unknown_codes_and_non_envelopes(peer):
    peer.script = [envelope("SOMETHING_NEW", 418)]
    with pytest.raises(nx.APIError) as ei:
        client(peer).me()
    assert ei.value.code == "SOMETHING_NEW" and type(ei.value) is nx.APIError
    peer.script = [(200, b"hello")]
    with pytest.raises(nx.ProtocolError):
        client(peer).me()
    peer.script = [(302, b"")]
    with pytest.raises(nx.ProtocolError):  # redirects are never followed
        client(peer).me()
