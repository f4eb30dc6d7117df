"""
Shared helpers for the Nexra black-box suite: the server and PostgreSQL
process wrappers, a small HTTP client, the envelope checks and the request
bodies. conftest.py builds fixtures out of these; test modules import the
assertion helpers and body builders from here.

Everything here talks to the real `nexra` binary over loopback; nothing
reaches into the server's source.
"""
import base64
import copy
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import requests

REQ_ID_RE = re.compile(r"^req_[A-Za-z0-9_-]+$")
RFC3339_Z_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
KEY_RE = re.compile(r"^nx_(live|test)_[a-z2-7]{59}$")
ANY_KEY_RE = re.compile(r"nx_(?:live|test)_[a-z2-7]{59}")
KEY_ID_RE = re.compile(r"^key_[0-9a-f]{16}$")
LISTEN_RE = re.compile(r"listening on (https?)://(\d+\.\d+\.\d+\.\d+):(\d+)")

HTTP_TIMEOUT = float(os.environ.get("NEXRA_TEST_HTTP_TIMEOUT", "15"))

AGENT_FIELDS = {
    "agent_id", "name", "description", "capability_type", "webhook_url",
    "pricing", "sla", "input_schema", "output_schema", "is_public", "status",
    "trust_score", "embedding_id", "registered_at", "updated_at",
}
KEY_LIST_FIELDS = {"key_id", "kind", "name", "prefix", "created_at",
                   "revoked_at"}
DELETE = object()  # sentinel for mutate(): remove the field


def unique(prefix="it"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# API keys (docs/keys.md), recomputed independently of the server.

def b32(raw):
    return base64.b32encode(raw).decode().lower().rstrip("=")


def key_checksum(prefix, body):
    return b32(hashlib.sha256((prefix + body).encode()).digest()[:4])


def make_key(kind="live", body=None):
    """A well-formed key with a correct checksum (unknown to any server)."""
    prefix = f"nx_{kind}_"
    if body is None:
        body = b32(secrets.token_bytes(32))
    assert len(body) == 52
    return prefix + body + key_checksum(prefix, body)


def key_checksum_ok(key):
    return (len(key) == 67 and key_checksum(key[:8], key[8:60]) == key[60:])


def flip_char(key, index):
    """Replaces key[index] by another base32 char that keeps the key
    well-formed in alphabet (for index 66 the result may break pad bits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    c = key[index]
    # change only the high bits of the 5-bit group so pad bits stay zero
    v = alphabet.index(c)
    nc = alphabet[v ^ 0x10]
    return key[:index] + nc + key[index + 1:]


# --------------------------------------------------------------------------
# Envelope checks.

def check_envelope(r):
    """Asserts the common envelope of a JSON response and returns the body."""
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), (
        f"{r.request.method} {r.url}: Content-Type {ctype!r}, body {r.text[:300]!r}")
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{r.request.method} {r.url}: body is not JSON: {r.text[:300]!r}")
    assert isinstance(body, dict), body
    meta = body.get("meta")
    assert isinstance(meta, dict), f"no meta object: {body}"
    rid = meta.get("request_id")
    assert isinstance(rid, str) and REQ_ID_RE.match(rid), f"bad meta.request_id: {meta}"
    lat = meta.get("latency_ms")
    assert isinstance(lat, int) and not isinstance(lat, bool) and lat >= 0, f"bad meta.latency_ms: {meta}"
    assert r.headers.get("X-Request-ID") == rid, (
        f"X-Request-ID {r.headers.get('X-Request-ID')!r} != meta.request_id {rid!r}")
    if r.status_code >= 400:
        assert "data" not in body, f"error response carries data: {body}"
        err = body.get("error")
        assert isinstance(err, dict), f"no error object: {body}"
        assert isinstance(err.get("code"), str) and err["code"], err
        assert isinstance(err.get("message"), str) and err["message"], err
        assert isinstance(err.get("details"), dict), f"error.details not an object: {err}"
    else:
        assert "error" not in body, f"success response carries error: {body}"
        assert "data" in body, f"no data: {body}"
    return body


def describe(r):
    return f"{r.request.method} {r.request.path_url} -> {r.status_code} {r.text[:600]}"


def expect_ok(r, status=200):
    """Asserts status and envelope; returns data."""
    assert r.status_code == status, describe(r)
    return check_envelope(r)["data"]


def expect_error(r, status, code, field=None):
    """Asserts an error response; returns the error object."""
    assert r.status_code == status, describe(r)
    err = check_envelope(r)["error"]
    assert err["code"] == code, describe(r)
    if field is not None:
        assert err["details"].get("field") == field, (
            f"details.field {err['details'].get('field')!r} != {field!r}: {describe(r)}")
    return err


def is_rfc3339z(s):
    return isinstance(s, str) and bool(RFC3339_Z_RE.match(s))


# --------------------------------------------------------------------------
# HTTP client.

_MISSING = object()


class Api:
    """requests.Session with the server's base URL and an optional key."""

    def __init__(self, server, key=None, agent_id=None, headers=None):
        self.server = server
        self.base = server.url
        self.key = key
        self.s = requests.Session()
        if key is not None:
            self.s.headers["Authorization"] = f"Bearer {key}"
        if agent_id is not None:
            self.s.headers["X-Agent-ID"] = agent_id
        if headers:
            self.s.headers.update(headers)

    def request(self, method, path, json_body=_MISSING, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        if json_body is not _MISSING:
            kw["data"] = json.dumps(json_body).encode()
            hdrs = dict(kw.pop("headers", None) or {})
            hdrs.setdefault("Content-Type", "application/json")
            kw["headers"] = hdrs
        return self.s.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_MISSING, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=_MISSING, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.s.close()


def api(server, key=None, **kw):
    return Api(server, key, **kw)


def register_org_data(server, plan="growth", name=None, token=None):
    """POST /v1/orgs/register; returns the response's data."""
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.post(server.url + "/v1/orgs/register",
                      json={"name": name or unique("org"), "plan": plan},
                      headers=hdrs, timeout=HTTP_TIMEOUT)
    return expect_ok(r, 201)


def register_org(server, plan="growth", name=None):
    """Returns (org_id, live_key, test_key)."""
    d = register_org_data(server, plan, name)
    return d["org_id"], d["api_key"], d["test_api_key"]


def agent_body(agent_id, **overrides):
    body = {
        "agent_id": agent_id,
        "name": "Research Agent",
        "description": "Researches competitors and market positioning",
        "capability_type": "research",
        "webhook_url": "https://example.com/hook",
        "webhook_secret": "s3cr3t-" + secrets.token_hex(17),  # 41 chars
        "pricing": {"per_call_usd": 0.15},
        "sla": {"p99_latency_ms": 3000, "availability": 0.99},
        "input_schema": {"type": "object",
                         "properties": {"company_name": {"type": "string"}}},
        "output_schema": {"type": "object"},
        "is_public": False,
    }
    body.update(overrides)
    return body


def mutate(body, path, value):
    """Returns a deep copy of body with dotted path set (or removed with
    DELETE)."""
    b = copy.deepcopy(body)
    parts = path.split(".")
    cur = b
    for p in parts[:-1]:
        cur = cur[p]
    if value is DELETE:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value
    return b


def register_agent(client, agent_id=None, **overrides):
    agent_id = agent_id or unique("agent")
    body = agent_body(agent_id, **overrides)
    data = expect_ok(client.post("/v1/agents/register", body), 201)
    return agent_id, body, data


# --------------------------------------------------------------------------
# Raw HTTP over a socket, for the cases requests cannot express (half-sent
# bodies, lying Content-Length, over-limit chunked uploads).

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())


def _parse_response(buf):
    """Returns (RawResponse, consumed) when buf holds a full response, else
    None. Skips 1xx interim responses."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        rest = buf[end + 4:]
        if 100 <= status < 200:
            buf = rest
            continue
        if "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                return None
            return RawResponse(status, headers, rest[:n])
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            pos = 0
            while True:
                nl = rest.find(b"\r\n", pos)
                if nl < 0:
                    return None
                size = int(rest[pos:nl].split(b";")[0], 16)
                if size == 0:
                    return RawResponse(status, headers, out)
                if len(rest) < nl + 2 + size + 2:
                    return None
                out += rest[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
        return ("eof", status, headers, rest)


def raw_read_response(sock, timeout=10.0):
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        parsed = _parse_response(buf)
        if isinstance(parsed, RawResponse):
            return parsed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete response within {timeout}s; got {buf[:300]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if isinstance(parsed, tuple):
                _, status, headers, rest = parsed
                return RawResponse(status, headers, rest)
            raise ConnectionError(f"connection closed before a full response; got {buf[:300]!r}")
        buf += chunk


def readable(sock, wait=0.0):
    r, _, _ = select.select([sock], [], [], wait)
    return bool(r)


def raw_send_parts(sock, parts, pause=0.0):
    """Sends parts one by one; stops early (returning False) when the server
    has started answering or closed the connection."""
    for p in parts:
        if readable(sock):
            return False
        try:
            sock.sendall(p)
        except (BrokenPipeError, ConnectionResetError):
            return False
        if pause:
            time.sleep(pause)
    return True


def raw_connect(server, timeout=10.0):
    return socket.create_connection((server.host, server.port), timeout=timeout)


def request_head(method, path, headers):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------
# PostgreSQL: one throwaway cluster per test session.

def _run_as_postgres():
    return os.geteuid() == 0


class PgCluster:
    def __init__(self, bindir=None):
        self.bindir = bindir or os.environ.get(
            "NEXRA_PG_BINDIR", "/usr/lib/postgresql/15/bin")
        self.dir = None
        self.port = None
        self.started = False

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def _run(self, argv, as_owner=True, check=True, **kw):
        if as_owner and _run_as_postgres():
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120, **kw)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n"
                               f"{p.stdout.decode(errors='replace')}")
        return p

    def start(self):
        for b in ("initdb", "pg_ctl", "createdb"):
            if not os.access(self._bin(b), os.X_OK):
                raise RuntimeError(f"PostgreSQL binary {self._bin(b)} not found")
        self.dir = tempfile.mkdtemp(prefix="nexra-pg-")
        os.chmod(self.dir, 0o700)
        if _run_as_postgres():
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._run([self._bin("initdb"), "-D", data, "-U", "nexra", "-A", "trust",
                   "-E", "UTF8", "--locale=C"])
        last = None
        for _ in range(3):
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                    f"-c fsync=on -c synchronous_commit=on -c max_connections=200")
            p = self._run([self._bin("pg_ctl"), "-D", data, "-l",
                           os.path.join(self.dir, "postgres.log"), "-o", opts,
                           "-w", "-t", "60", "start"], check=False,
                          stdin=subprocess.DEVNULL)
            if p.returncode == 0:
                self.started = True
                break
            last = p.stdout.decode(errors="replace") + self.log_tail()
        if not self.started:
            raise RuntimeError(f"pg_ctl start failed:\n{last}")
        self.createdb("nexra")

    def log_tail(self, n=4000):
        try:
            with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def createdb(self, name):
        self._run([self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "nexra", name], as_owner=False)
        return name

    def new_database(self):
        return self.createdb("nexra_" + uuid.uuid4().hex[:12])

    def uri(self, dbname="nexra"):
        return f"postgres://nexra@127.0.0.1:{self.port}/{dbname}"

    def dump(self, dbname):
        """Data-only SQL dump of a database as text."""
        pg_dump = self._bin("pg_dump")
        if not os.access(pg_dump, os.X_OK):
            pg_dump = shutil.which("pg_dump")
        p = self._run([pg_dump, "-h", "127.0.0.1", "-p", str(self.port),
                       "-U", "nexra", "--data-only", "--no-owner", dbname],
                      as_owner=False)
        return p.stdout.decode(errors="replace")

    def psql(self, dbname, sql):
        psql = self._bin("psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql")
        p = self._run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "nexra",
                       "-d", dbname, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                       "-c", sql], as_owner=False)
        return p.stdout.decode(errors="replace")

    def stop(self):
        try:
            if self.started:
                self._run([self._bin("pg_ctl"), "-D", os.path.join(self.dir, "data"),
                           "-m", "fast", "-w", "-t", "60", "stop"], check=False)
                self.started = False
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None


# --------------------------------------------------------------------------
# The server under test.

_live_servers = set()


def kill_all_servers():
    for s in list(_live_servers):
        s.kill()


class NexraServer:
    """One `nexra serve` process in its own work directory.

    backend is "sqlite" or "postgres"; db is the --db value (created by the
    caller for postgres). With flags=False the listen address, database and
    dev mode are passed through NEXRA_* environment variables instead.
    """

    def __init__(self, binary, backend, workdir, db, extra_args=(), env=None,
                 flags=True, pg=None, pg_dbname=None):
        self.binary = binary
        self.backend = backend
        self.workdir = workdir
        self.db = db
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.flags = flags
        self.pg = pg
        self.pg_dbname = pg_dbname
        self.proc = None
        self.host = "127.0.0.1"
        self.port = None
        self.listen_line = None
        self.stdout_path = os.path.join(workdir, "server.stdout")
        self.stderr_path = os.path.join(workdir, "server.stderr")
        self.master_key_path = os.path.join(workdir, "master.key")
        self.starts = 0

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def sqlite_path(self):
        assert self.db.startswith("sqlite:")
        return self.db[len("sqlite:"):]

    def _size(self, path):
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    def _read_from(self, path, off):
        try:
            with open(path, "rb") as f:
                f.seek(off)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def logs(self):
        return self._read_from(self.stdout_path, 0) + self._read_from(self.stderr_path, 0)

    def tail(self, n=3000):
        out = self._read_from(self.stdout_path, 0)[-n:]
        err = self._read_from(self.stderr_path, 0)[-n:]
        return f"--- server stdout (tail) ---\n{out}\n--- server stderr (tail) ---\n{err}"

    def _spawn(self, listen):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXRA_")}
        argv = [self.binary, "serve"]
        if self.flags:
            argv += ["--listen", listen, "--db", self.db,
                     "--master-key-file", self.master_key_path]
        else:
            env["NEXRA_LISTEN"] = listen
            env["NEXRA_DB"] = self.db
        argv += self.extra_args
        env.update(self.env)
        self.argv = argv
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env,
                                         stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err)
        finally:
            out.close()
            err.close()
        _live_servers.add(self)

    def start(self, timeout=20.0):
        """Starts the process and waits for GET /healthz to answer 200."""
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        off_out = self._size(self.stdout_path)
        off_err = self._size(self.stderr_path)
        deadline = time.monotonic() + timeout
        self._spawn("127.0.0.1:0")
        self.port = None
        # The server prints the address it listens on.
        while time.monotonic() < deadline and self.port is None:
            text = (self._read_from(self.stdout_path, off_out) + "\n" +
                    self._read_from(self.stderr_path, off_err))
            m = LISTEN_RE.search(text)
            if m:
                self.listen_line = m.group(0)
                if int(m.group(3)) != 0:
                    self.host, self.port = m.group(2), int(m.group(3))
                    break
            if self.proc.poll() is not None:
                self._fail(f"server exited with {self.proc.returncode} before listening")
            time.sleep(0.02)
        if self.port is None:
            # Fallback: no usable "listening on" line; choose the port ourselves.
            self.kill()
            self.listen_line = None
            self.port = free_port()
            self._spawn(f"127.0.0.1:{self.port}")
            deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"server exited with {self.proc.returncode} during start")
            try:
                r = requests.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return self
                last = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        self._fail(f"GET /healthz not 200 within {timeout}s (last: {last})")

    def _fail(self, msg):
        import pytest
        pytest.fail(f"{msg}\nargv: {getattr(self, 'argv', None)}\n{self.tail()}",
                    pytrace=False)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the server and waits; returns the exit status, or None when
        it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            _live_servers.discard(self)
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        _live_servers.discard(self)
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        _live_servers.discard(self)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def db_text_dump(self):
        """Every stored value as text, for 'never stored in plaintext' checks:
        a table dump (SQLite: every row of every table; PostgreSQL: pg_dump)
        plus, for SQLite, the raw bytes of the database and WAL files."""
        if self.backend == "sqlite":
            import sqlite3
            parts = []
            con = sqlite3.connect(self.sqlite_path, timeout=10)
            try:
                tables = [r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table','view')")]
                for t in tables:
                    try:
                        rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
                    except sqlite3.DatabaseError:
                        continue
                    for row in rows:
                        for v in row:
                            if isinstance(v, bytes):
                                parts.append(v.decode("latin-1"))
                                parts.append(v.hex())
                            else:
                                parts.append(str(v))
            finally:
                con.close()
            for suffix in ("", "-wal"):
                p = self.sqlite_path + suffix
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        parts.append(f.read().decode("latin-1"))
            return "\n".join(parts)
        return self.pg.dump(self.pg_dbname)
