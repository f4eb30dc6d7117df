"""
Receivers for the notification suite, all on 127.0.0.1:0 in threads:

- `HttpReceiver`: a Slack-like incoming webhook and a generic webhook
  receiver in one. Every POST is recorded per path; `fail_first(path, n)`
  makes the first n requests to a path answer 500 (then 200), as a flaky
  channel would. Webhook records can be checked against a secret with the
  same two signature schemes a delegation callee checks (callee.py).
- `SmtpServer`: a minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET,
  NOOP, QUIT; no TLS, no auth) that keeps every message it accepts, parsed
  with the standard library's email parser.
"""
import email
import email.policy
import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callee import verify_standard_webhook, verify_webhook_signature


class HttpRecord:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers  # lower-cased names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def signed_by(self, secret):
        h = self.headers
        return (verify_webhook_signature(self.body, secret, h.get("x-nexra-signature", ""))
                and verify_standard_webhook(self.body, secret, h.get("webhook-id", ""),
                                            h.get("webhook-timestamp", ""),
                                            h.get("webhook-signature", "")))


class HttpReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = {}
        self.failures = {}
        self.tries = {}
        self.hanging = {}  # path -> threading.Event set when it may answer
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with recv.lock:
                    gate = recv.hanging.get(self.path)
                if gate is not None:
                    with recv.lock:
                        recv.tries[self.path] = recv.tries.get(self.path, 0) + 1
                    gate.wait(30)
                    return  # the connection closes without an answer
                code = recv._record(self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body)
                out = b"ok" if code == 200 else b"try again"
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_first(self, path, n):
        with self.lock:
            self.failures[path] = n

    def hang(self, path):
        """Requests to path get no answer until release(path)."""
        with self.lock:
            self.hanging[path] = threading.Event()

    def release(self, path):
        with self.lock:
            gate = self.hanging.pop(path, None)
        if gate:
            gate.set()

    def _record(self, path, headers, body):
        with self.lock:
            self.tries[path] = self.tries.get(path, 0) + 1
            if self.tries[path] <= self.failures.get(path, 0):
                return 500
            self.records.setdefault(path, []).append(HttpRecord(path, headers, body))
            return 200

    def got(self, path):
        with self.lock:
            return list(self.records.get(path, []))

    def attempts(self, path):
        with self.lock:
            return self.tries.get(path, 0)

    def close(self):
        for p in list(self.hanging):
            self.release(p)
        self.httpd.shutdown()
        self.httpd.server_close()


class Mail:
    def __init__(self, mail_from, rcpts, data):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.data = data
        self.msg = email.message_from_bytes(data, policy=email.policy.default)

    @property
    def subject(self):
        return str(self.msg["subject"])

    @property
    def text(self):
        return self.msg.get_content()


class SmtpServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.mails = []
        srv = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self):
                self.reply("220 test-smtp ESMTP")
                mail_from, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    up = cmd.upper()
                    if up.startswith("EHLO"):
                        self.wfile.write(b"250-test-smtp\r\n250 8BITMIME\r\n")
                        self.wfile.flush()
                    elif up.startswith("HELO"):
                        self.reply("250 test-smtp")
                    elif up.startswith("MAIL FROM:"):
                        mail_from, rcpts = cmd[10:].strip().strip("<>"), []
                        self.reply("250 OK")
                    elif up.startswith("RCPT TO:"):
                        rcpts.append(cmd[8:].strip().strip("<>"))
                        self.reply("250 OK")
                    elif up == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while True:
                            dl = self.rfile.readline()
                            if not dl or dl == b".\r\n":
                                break
                            lines.append(dl[1:] if dl.startswith(b"..") else dl)
                        with srv.lock:
                            srv.mails.append(Mail(mail_from, rcpts, b"".join(lines)))
                        self.reply("250 OK queued")
                    elif up in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif up == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address):
        with self.lock:
            return [m for m in self.mails if address in m.rcpts]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(pred, timeout=30.0, step=0.1, what="condition"):
    """Polls pred until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)
