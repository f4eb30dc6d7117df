"""The callee side: check that a webhook came from Nexra, read its scoped
token, and turn a plain function into a webhook endpoint.

No SDK is needed to be a callee (docs/webhooks.md); this module is the
standard-library version of what a callee must check:

- `verify_webhook_signature`: the seed's function (X-Nexra-Signature);
- `verify_standard_webhook`: the Standard Webhooks signature, with a
  replay window on webhook-timestamp;
- `verify_delegation_token`: the HS256 JWT in Authorization (signature,
  algorithm pinned, issuer, audience = this agent, exp/nbf);
- `parse_webhook`: all of the above on one request, giving a `Delegation`;
- `webhook_handler` / `WebhookServer`: a BaseHTTPRequestHandler for
  http.server that calls your function with the `Delegation` and answers
  with what it returns.
"""
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import NexraError

MAX_WEBHOOK_BODY = 1024 * 1024


def verify_webhook_signature(payload_bytes: bytes, secret: str, signature: str) -> bool:
    """The seed's function: `signature` is the X-Nexra-Signature header."""
    if not isinstance(signature, str):
        return False
    expected = 'sha256=' + hmac.new(secret.encode(), payload_bytes, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def _standard_key(secret):
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify_standard_webhook(payload_bytes, secret, msg_id, timestamp, signature,
                            tolerance=300, now=None):
    """Standard Webhooks: webhook-signature lists "v1,<base64>" signatures
    of "{webhook-id}.{webhook-timestamp}.{body}"; one must match, and the
    timestamp must be within `tolerance` seconds of now (replays)."""
    if not all(isinstance(x, str) for x in (msg_id, timestamp, signature)):
        return False
    if not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if tolerance is not None and abs(now - int(timestamp)) > tolerance:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + payload_bytes
    expected = base64.b64encode(
        hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()).decode()
    for part in signature.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class InvalidWebhook(NexraError):
    """A webhook that must not be served: bad signature, bad or expired
    token, inconsistent ids, malformed body. `status` is what to answer
    (401 for authentication failures, 400 for a malformed request)."""

    code = "INVALID_WEBHOOK"

    def __init__(self, message, status=401):
        super().__init__(message, status=status)


InvalidToken = InvalidWebhook


def _b64url(s):
    if not isinstance(s, str) or not s or any(c in s for c in "=+/"):
        raise InvalidWebhook("token: bad base64url segment")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (ValueError, TypeError):
        raise InvalidWebhook("token: bad base64url segment")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def verify_delegation_token(token, secret, audience, *, issuer="nexra", leeway=0, now=None):
    """Verifies a delegation token (docs/webhooks.md) and returns its
    claims. HS256 only (any other `alg`, `none` included, is refused),
    keyed with the agent's webhook_secret; `iss` must be `issuer`, `aud`
    must be `audience` (this agent's id), `exp` must be in the future and
    `nbf` not in the future (both within `leeway` seconds).
    Raises InvalidWebhook (InvalidToken) with the reason."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidWebhook("token: not a JWT (three dot-separated parts)")
    h64, p64, s64 = token.split(".")
    try:
        header = json.loads(_b64url(h64))
    except ValueError:
        raise InvalidWebhook("token: header is not JSON")
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidWebhook(f"token: algorithm must be HS256, got "
                             f"{header.get('alg') if isinstance(header, dict) else header!r}")
    if "crit" in header:
        raise InvalidWebhook("token: unsupported critical header parameters")
    expected = hmac.new(secret.encode(), (h64 + "." + p64).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64url(s64)):
        raise InvalidWebhook("token: signature does not verify")
    try:
        claims = json.loads(_b64url(p64))
    except ValueError:
        raise InvalidWebhook("token: claims are not JSON")
    if not isinstance(claims, dict):
        raise InvalidWebhook("token: claims are not an object")
    if claims.get("iss") != issuer:
        raise InvalidWebhook(f"token: issuer {claims.get('iss')!r} is not {issuer!r}")
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise InvalidWebhook(f"token: audience {aud!r} is not {audience!r}")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if not _is_int(exp):
        raise InvalidWebhook("token: exp is missing")
    if now > exp + leeway:
        raise InvalidWebhook(f"token: expired at {exp}")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_int(nbf) or now + leeway < nbf):
        raise InvalidWebhook(f"token: not valid before {nbf}")
    return claims


class Delegation:
    """One verified webhook: the body's fields, the token's claims and the
    raw request."""

    def __init__(self, body, claims, headers, raw):
        self.delegation_id = body["delegation_id"]
        self.capability = body.get("capability")
        self.task = body.get("task")
        self.budget_cap = body.get("budget_cap")
        self.expires_at = body.get("expires_at")
        self.claims = claims or {}
        self.headers = headers
        self.body = raw
        self.json = body

    @property
    def caller_agent_id(self):
        return self.claims.get("sub")

    @property
    def seconds_left(self):
        return None if self.expires_at is None else self.expires_at - time.time()

    def __repr__(self):
        return (f"<Delegation {self.delegation_id} {self.capability} from "
                f"{self.caller_agent_id} cap {self.budget_cap}>")


def _header(headers, name):
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def parse_webhook(body, headers, secret, agent_id, *, verify_token=True, leeway=5):
    """Checks one webhook request exactly as docs/webhooks.md says and
    returns a Delegation. `body` is the raw bytes; `headers` any mapping of
    header names (any case) to values; `secret` the agent's webhook secret
    (or a function returning it, for rotation). Raises InvalidWebhook."""
    if callable(secret):
        secret = secret()
    if not verify_webhook_signature(body, secret, _header(headers, "x-nexra-signature")):
        raise InvalidWebhook("X-Nexra-Signature does not verify")
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidWebhook("body is not JSON", status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("delegation_id"), str):
        raise InvalidWebhook("body is not a delegation webhook", status=400)
    did = payload["delegation_id"]
    if _header(headers, "x-nexra-delegation") != did:
        raise InvalidWebhook("X-Nexra-Delegation does not name the body's delegation")
    claims = None
    if verify_token:
        auth = _header(headers, "authorization") or ""
        if not auth.startswith("Bearer "):
            raise InvalidWebhook("no delegation token (Authorization: Bearer)")
        claims = verify_delegation_token(auth[len("Bearer "):], secret, agent_id,
                                         leeway=leeway)
        if claims.get("jti") != did:
            raise InvalidWebhook("token is for another delegation")
        if claims.get("scope") != payload.get("capability"):
            raise InvalidWebhook("token scope is not the body's capability")
    return Delegation(payload, claims, headers, body)


class CalleeError(Exception):
    """Raise from a handler function to answer a non-2xx: Nexra records the
    delegation failed and does not bill it."""

    def __init__(self, message, status=500):
        super().__init__(message)
        self.status = status


def _response(value):
    """What a handler function returned, as the webhook answer: a dict
    with `result` goes as is ({result, cost_usd, llm_tokens?})."""
    if not isinstance(value, dict) or "result" not in value or "cost_usd" not in value:
        raise CalleeError("the handler must return {'result': ..., 'cost_usd': ...}")
    return json.dumps(value).encode()


def webhook_handler(fn, secret, agent_id, *, verify_token=True, on_error=None):
    """A BaseHTTPRequestHandler class for http.server: every POST is checked
    with parse_webhook, then `fn(delegation)` runs and its return value
    ({"result": ..., "cost_usd": ...}) is the answer. A webhook that does
    not verify gets 401 (400 if malformed) and fn is not called; CalleeError
    answers its status; any other exception answers 500. `on_error(exc)`,
    if given, is told of every refusal and failure."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nexra-callee"

        def log_message(self, *args):
            pass

        def _send(self, status, payload):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = -1
            if n < 0 or n > MAX_WEBHOOK_BODY:
                self.close_connection = True
                return self._send(413 if n > 0 else 400, b'{"error":"bad body length"}')
            body = self.rfile.read(n)
            try:
                d = parse_webhook(body, dict(self.headers.items()), secret, agent_id,
                                  verify_token=verify_token)
                payload = _response(fn(d))
                status = 200
            except InvalidWebhook as e:
                status, payload = e.status, json.dumps({"error": e.message}).encode()
                if on_error:
                    on_error(e)
            except CalleeError as e:
                status, payload = e.status, json.dumps({"error": str(e)}).encode()
                if on_error:
                    on_error(e)
            except Exception as e:  # noqa: BLE001  (a failed task is a 500, not a crash)
                status, payload = 500, b'{"error":"handler failed"}'
                if on_error:
                    on_error(e)
            self._send(status, payload)

        def do_GET(self):
            self._send(405, b'{"error":"POST only"}')

    return Handler


class WebhookServer:
    """A threaded http.server serving `fn` as a webhook endpoint, in a
    background thread: `with WebhookServer(fn, secret, agent_id) as srv:`
    then register `srv.url` as the agent's webhook_url (with --dev for
    http:// and loopback)."""

    def __init__(self, fn, secret, agent_id, host="127.0.0.1", port=0, path="/execute",
                 **kw):
        self.path = path
        self.httpd = ThreadingHTTPServer((host, port),
                                         webhook_handler(fn, secret, agent_id, **kw))
        self.httpd.daemon_threads = True
        self._thread = None

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever()

    def close(self):
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
