"""HTTP for the client: one request, the envelope, typed errors, retries.

Standard library only (urllib). Redirects are never followed, so the API
key is only ever sent to the host the user named.

Retry rules (docs/sdk.md):
- SAFE requests (GET, and POST /v1/delegate with an Idempotency-Key) are
  retried on a connection error or client timeout, 429, 500, 503, and a
  502/504 that is not Nexra's envelope (a proxy in between). A 502
  CALLEE_FAILED or 504 CALLEE_TIMEOUT from Nexra is a recorded outcome and
  never retried. With an idempotency key, a 409 CONFLICT on a retry means
  "the first attempt is still waiting on its callee" and is retried too.
- UNSAFE requests (other POSTs, PUT, PATCH, DELETE) are retried only when
  nothing can have happened: 429 (refused by the rate limiter before the
  handler) and a refused connection.
- Backoff: 0.5 s doubling per attempt, with jitter, at most 8 s; a 429
  waits its Retry-After instead, and is raised at once as RateLimited when
  Retry-After is longer than `retry_max_wait`.
"""
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from . import errors
from .results import wrap

SAFE, IDEMPOTENT, UNSAFE = "safe", "idempotent", "unsafe"
USER_AGENT = "nexra-python/0.1.0"
MAX_BODY = 16 * 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx surfaces as an HTTPError, never followed


_opener = urllib.request.build_opener(_NoRedirect())


def query_string(params):
    items = [(k, v) for k, v in params.items() if v is not None]
    out = []
    for k, v in items:
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif hasattr(v, "isoformat"):
            v = rfc3339(v)
        out.append((k, str(v)))
    return ("?" + urllib.parse.urlencode(out)) if out else ""


def rfc3339(dt):
    """A datetime as RFC 3339 UTC (naive datetimes are taken as UTC)."""
    import datetime
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return dt.replace(microsecond=0).isoformat() + "Z"


def path_segment(s):
    if not isinstance(s, str) or not s:
        raise ValueError(f"expected a non-empty id string, got {s!r}")
    return urllib.parse.quote(s, safe="")


class Transport:
    def __init__(self, base_url, api_key, agent_id, timeout, max_retries, retry_max_wait,
                 user_agent=None):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.agent_id = agent_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_max_wait = retry_max_wait
        self.user_agent = user_agent or USER_AGENT
        self.sleep = time.sleep  # tests may replace it

    # -- one exchange -------------------------------------------------------

    def _once(self, method, path, body, headers, timeout):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        for k, v in headers.items():
            req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            resp = _opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            resp = e
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise errors.NexraTimeout(f"no answer from {self.base_url} within {timeout} s")
            err = errors.NexraConnectionError(f"cannot reach {self.base_url}: {reason}")
            err.refused = isinstance(reason, ConnectionRefusedError)
            raise err from e
        except (socket.timeout, TimeoutError):
            raise errors.NexraTimeout(f"no answer from {self.base_url} within {timeout} s")
        except (ConnectionError, OSError) as e:
            raise errors.NexraConnectionError(f"connection to {self.base_url} failed: {e}") from e
        try:
            with resp:
                raw = resp.read(MAX_BODY + 1)
                status = resp.status if hasattr(resp, "status") else resp.code
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
        except (socket.timeout, TimeoutError):
            raise errors.NexraTimeout(f"no answer from {self.base_url} within {timeout} s")
        except (ConnectionError, OSError) as e:
            raise errors.NexraConnectionError(f"reading from {self.base_url} failed: {e}") from e
        if len(raw) > MAX_BODY:
            raise errors.ProtocolError(f"answer over {MAX_BODY} bytes", status=status,
                                       headers=hdrs)
        return status, hdrs, raw

    @staticmethod
    def _envelope(status, hdrs, raw):
        """(data, meta) for a success; raises the typed error otherwise."""
        try:
            env = json.loads(raw) if raw else None
        except ValueError:
            env = None
        if not isinstance(env, dict) or not ("data" in env or "error" in env):
            raise errors.ProtocolError(
                f"HTTP {status} without a Nexra envelope: {raw[:200]!r}", status=status,
                headers=hdrs)
        meta = env.get("meta") if isinstance(env.get("meta"), dict) else {}
        if "error" in env and isinstance(env["error"], dict):
            e = env["error"]
            raise errors.error_for(e.get("code"), e.get("message") or "", status=status,
                                   details=e.get("details"), meta=meta, headers=hdrs)
        if not 200 <= status < 300:
            raise errors.ProtocolError(f"HTTP {status} with a data envelope", status=status,
                                       headers=hdrs)
        return env.get("data"), meta

    # -- retries ------------------------------------------------------------

    def _backoff(self, attempt):
        return min(8.0, 0.5 * (2 ** attempt)) * random.uniform(0.5, 1.0)

    def _retry_wait(self, exc, mode, attempt):
        """Seconds to wait before retrying after exc, or None to raise it."""
        if attempt >= self.max_retries:
            return None
        if isinstance(exc, errors.RateLimited):
            ra = exc.retry_after
            wait = self._backoff(attempt) if ra is None else float(ra)
            return wait if wait <= self.retry_max_wait else None
        if mode == UNSAFE:
            refused = getattr(exc, "refused", False)  # nothing was sent
            return self._backoff(attempt) if refused else None
        if isinstance(exc, errors.NexraConnectionError):  # includes timeouts
            return self._backoff(attempt)
        if isinstance(exc, (errors.InternalError, errors.Unavailable)):
            return self._backoff(attempt)
        if isinstance(exc, errors.ProtocolError) and exc.status in (502, 503, 504):
            return self._backoff(attempt)
        if mode == IDEMPOTENT and attempt > 0 and isinstance(exc, errors.Conflict):
            return self._backoff(attempt)
        return None

    def request(self, method, path, body=None, *, mode=None, auth=True, agent=True,
                timeout=None, headers=None, idempotency_key=None):
        if mode is None:
            mode = SAFE if method in ("GET", "HEAD") else UNSAFE
        if idempotency_key is not None:
            mode = IDEMPOTENT
        h = {"Accept": "application/json", "User-Agent": self.user_agent}
        if auth:
            if not self.api_key:
                raise errors.Unauthorized(
                    "no API key: pass api_key= or set NEXRA_API_KEY", code="UNAUTHORIZED")
            h["Authorization"] = "Bearer " + self.api_key
        if agent and self.agent_id:
            h["X-Agent-ID"] = self.agent_id
        if idempotency_key is not None:
            h["Idempotency-Key"] = idempotency_key
        if headers:
            h.update(headers)
        timeout = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                status, hdrs, raw = self._once(method, path, body, h, timeout)
                data, meta = self._envelope(status, hdrs, raw)
                return wrap(data, meta, status, hdrs, attempt + 1)
            except errors.NexraError as exc:
                wait = self._retry_wait(exc, mode, attempt)
                if wait is None:
                    raise
                attempt += 1
                self.sleep(wait)
