"""
A fake of Stripe's meter events API for the billing suite: a threaded HTTP
server on 127.0.0.1:0 that checks every request the way Stripe would read
it and records what reached it, so tests assert on what Stripe saw.

Checks (a failed check is recorded in `errors` and answered 400):
- POST /v1/billing/meter_events only;
- Authorization: Bearer <a secret key the test registered with add_key>;
- Content-Type application/x-www-form-urlencoded, a body that parses
  strictly with exactly event_name, payload[stripe_customer_id],
  payload[value] (an integer), identifier (a delegation id), timestamp
  (Unix seconds), each once, the customer the key belongs to;
- Idempotency-Key: "bill_" + identifier.

Like Stripe: a request repeating the Idempotency-Key of an accepted one
with the same body gets the first answer again (a replay; no second
effect), with another body a 400; a new key with an identifier already
accepted is a 400 duplicate (and an error here: Nexra never changes keys).
Rate limits and server errors (429, 5xx) are answered before that layer and
leave nothing behind, so a retry runs for real.

Behaviour: `push(*answers)` queues answers for the next requests, whatever
they are (after the queue: 200); `fail_identifier(id, status, message)`
answers that identifier with an error until `heal(id)`. `on_answer`, when
set, is called once each request has been acted on and before its answer is
written (the kill test kills the sender there: the effect happened, the
answer never arrives).
"""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

FIELDS = {"event_name", "payload[stripe_customer_id]", "payload[value]", "identifier",
          "timestamp"}
DEL_RE = re.compile(r"^del_[0-9a-f]{24}$")


def answer(status=200, retry_after=None, message=None, code=None):
    body = None
    if status >= 400:
        body = {"error": {"type": "invalid_request_error", "message": message or f"status {status}"}}
        if code:
            body["error"]["code"] = code
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return {"status": status, "headers": headers, "body": body}


class Hit:
    def __init__(self, headers, form, raw):
        self.headers = headers
        self.form = form
        self.raw = raw
        self.at = time.time()
        self.status = None
        self.kind = None  # "effect" | "replay" | "error" | "scheduled"

    @property
    def identifier(self):
        return self.form.get("identifier")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.server.fake._handle(self)

    def do_GET(self):  # noqa: N802
        self.server.fake._reply(self, 404, {}, {"error": {"message": "no such route"}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # two dispatchers open 128 connections at once

    def handle_error(self, request, client_address):
        pass


class FakeStripe:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}          # secret -> customer
        self.queue = []
        self.failing = {}       # identifier -> (status, message)
        self.idem = {}          # key -> (raw body, status, body)
        self.effects = {}       # identifier -> form of the accepted event
        self.hits = []
        self.errors = []
        self.on_answer = None
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.fake = self
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.srv.server_address[1]}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    # -- test controls
    def add_key(self, secret, customer):
        with self.lock:
            self.keys[secret] = customer

    def push(self, *answers):
        with self.lock:
            self.queue.extend(answers)

    def fail_identifier(self, identifier, status=400, message="No such customer"):
        with self.lock:
            self.failing[identifier] = (status, message)

    def heal(self, identifier):
        with self.lock:
            self.failing.pop(identifier, None)

    def hits_for(self, identifier):
        with self.lock:
            return [h for h in self.hits if h.identifier == identifier]

    def effect_ids(self):
        with self.lock:
            return set(self.effects)

    def wait_effects(self, ids, timeout=30.0):
        ids = set(ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ids <= self.effect_ids():
                return True
            time.sleep(0.1)
        return ids <= self.effect_ids()

    # -- serving
    def _reply(self, h, status, headers, body):
        data = json.dumps(body).encode() if body is not None else b"{}"
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def _check(self, h, raw):
        """The form, or raises ValueError naming what is wrong."""
        if h.path != "/v1/billing/meter_events":
            raise ValueError(f"path {h.path}")
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.keys:
            raise PermissionError(f"unknown key in {auth[:20]!r}")
        ctype = h.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise ValueError(f"content type {ctype!r}")
        try:
            parsed = parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"form does not parse: {e}") from None
        if set(parsed) != FIELDS or any(len(v) != 1 for v in parsed.values()):
            raise ValueError(f"form fields {sorted(parsed)}")
        form = {k: v[0] for k, v in parsed.items()}
        if not re.fullmatch(r"\d+", form["payload[value]"]):
            raise ValueError(f"payload[value] {form['payload[value]']!r} is not an integer")
        if not re.fullmatch(r"\d{10}", form["timestamp"]):
            raise ValueError(f"timestamp {form['timestamp']!r}")
        if not DEL_RE.match(form["identifier"]):
            raise ValueError(f"identifier {form['identifier']!r}")
        if form["payload[stripe_customer_id]"] != self.keys[auth[7:]]:
            raise ValueError("customer is not the key's")
        if h.headers.get("Idempotency-Key") != "bill_" + form["identifier"]:
            raise ValueError(f"Idempotency-Key {h.headers.get('Idempotency-Key')!r}")
        return form

    def _handle(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n)
        with self.lock:
            hit = Hit(dict(h.headers), {}, raw)
            self.hits.append(hit)
            try:
                hit.form = self._check(h, raw)
            except PermissionError as e:
                hit.kind, a = "error", answer(401, message=str(e))
                self.errors.append(str(e))
            except ValueError as e:
                hit.kind, a = "error", answer(400, message=str(e))
                self.errors.append(str(e))
            else:
                a = self._decide(h, hit, raw)
            hit.status = a["status"]
        cb = self.on_answer
        if cb:  # the effect is done; the answer has not left yet
            cb(hit)
        try:
            self._reply(h, a["status"], a["headers"], a["body"])
        except OSError:
            pass  # the client died meanwhile (the kill test): Stripe acted all the same

    def _decide(self, h, hit, raw):
        if self.queue:
            hit.kind = "scheduled"
            a = self.queue.pop(0)
            if a["status"] < 300:  # a scheduled success is a real one
                return self._execute(h, hit, raw)
            return a
        return self._execute(h, hit, raw)

    def _execute(self, h, hit, raw):
        key = h.headers["Idempotency-Key"]
        ident = hit.identifier
        if key in self.idem:
            first_raw, status, body = self.idem[key]
            if first_raw != raw:
                hit.kind = "error"
                return answer(400, message="Keys for idempotent requests can only be used "
                                           "with the same parameters", code="idempotency_error")
            hit.kind = "replay"
            return {"status": status, "headers": {"Idempotent-Replayed": "true"}, "body": body}
        if ident in self.failing:
            status, message = self.failing[ident]
            hit.kind = "error"
            a = answer(status, message=message, code="resource_missing")
        elif ident in self.effects:
            hit.kind = "error"
            self.errors.append(f"duplicate identifier {ident} under a new key")
            a = answer(400, message="duplicate identifier")
        else:
            hit.kind = "effect"
            self.effects[ident] = hit.form
            a = {"status": 200, "headers": {},
                 "body": {"object": "billing.meter_event", "identifier": ident,
                          "event_name": hit.form["event_name"],
                          "payload": {"stripe_customer_id": hit.form["payload[stripe_customer_id]"],
                                      "value": hit.form["payload[value]"]},
                          "timestamp": int(hit.form["timestamp"])}}
        if a["status"] == 200:  # failed validation leaves no idempotent result
            self.idem[key] = (raw, a["status"], a["body"])
        return a
