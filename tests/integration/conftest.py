"""
Harness for the black-box suite: starts the real `nexra serve` on loopback
against SQLite and against a throwaway PostgreSQL 15 cluster.

- `pg_cluster` (session): initdb + pg_ctl on a free loopback port, as the
  `postgres` user when we run as root; removed at session end.
- `backend` (session, parametrized "sqlite"/"postgres"; NEXRA_TEST_BACKENDS
  may narrow it, e.g. NEXRA_TEST_BACKENDS=sqlite).
- `server` (session, one per backend): `nexra serve --dev` on a fresh
  database; every test registers its own orgs so tests stay independent.
- `start_server` (function): a factory for servers with extra flags or
  environment (sign-up modes, non-dev mode, rate limits, restarts).

On a failing test the tails of the involved servers' logs are attached to
the report.
"""
import atexit
import os
import shutil
import signal
import tempfile

import pytest

from helpers import (NexraServer, PgCluster, kill_all_servers, register_org,
                     agent_body, api)  # noqa: F401  (re-exported helpers)

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_BACKENDS = ["sqlite", "postgres"]
BACKENDS = [b for b in os.environ.get("NEXRA_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
            if b in ALL_BACKENDS]
KEEP = os.environ.get("NEXRA_TEST_KEEP") == "1"

atexit.register(kill_all_servers)


@pytest.fixture(scope="session")
def nexra_bin():
    path = os.environ.get("NEXRA_BIN") or os.path.join(HERE, "..", "..", "build", "nexra")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"nexra binary not found at {path} (set NEXRA_BIN)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def pg_cluster():
    pg = PgCluster()
    try:
        pg.start()
    except Exception as e:  # noqa: BLE001
        pg.stop()
        pytest.fail(f"could not start PostgreSQL: {e}", pytrace=False)
    try:
        yield pg
    finally:
        pg.stop()


def _new_workdir(tag):
    return tempfile.mkdtemp(prefix=f"nexra-it-{tag}-")


def make_server(request, nexra_bin, backend, extra_args=(), env=None, flags=True,
                workdir=None, db=None):
    """Builds (does not start) a server on a fresh database."""
    workdir = workdir or _new_workdir(backend)
    pg = None
    dbname = None
    if backend == "postgres":
        pg = request.getfixturevalue("pg_cluster")
        if db is None:
            dbname = pg.new_database()
            db = pg.uri(dbname)
        else:
            dbname = db.rsplit("/", 1)[1]
    elif db is None:
        db = "sqlite:" + os.path.join(workdir, "nexra.db")
    return NexraServer(nexra_bin, backend, workdir, db, extra_args, env, flags,
                       pg=pg, pg_dbname=dbname)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def server(request, nexra_bin, backend):
    srv = make_server(request, nexra_bin, backend, ["--dev"])
    try:
        srv.start()
        yield srv
        rc = srv.stop(signal.SIGTERM, 10)
        assert rc == 0, f"server did not exit 0 within 10 s of SIGTERM (rc={rc})\n{srv.tail()}"
    finally:
        srv.kill()
        if not KEEP:
            shutil.rmtree(srv.workdir, ignore_errors=True)


class ServerFactory:
    def __init__(self, request, nexra_bin):
        self.request = request
        self.nexra_bin = nexra_bin
        self.servers = []

    def __call__(self, *extra_args, env=None, backend="sqlite", flags=True, start=True,
                 workdir=None, db=None):
        srv = make_server(self.request, self.nexra_bin, backend, extra_args, env, flags,
                          workdir=workdir, db=db)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def restart_of(self, srv, *extra_args, env=None, start=True):
        """A new server process on the same work directory, database and
        master key as srv (which must be stopped)."""
        assert not srv.running
        new = NexraServer(srv.binary, srv.backend, srv.workdir, srv.db,
                          extra_args or srv.extra_args, env if env is not None else srv.env,
                          srv.flags, pg=srv.pg, pg_dbname=srv.pg_dbname)
        self.servers.append(new)
        if start:
            new.start()
        return new

    def cleanup(self):
        dirs = set()
        for s in self.servers:
            s.kill()
            dirs.add(s.workdir)
        if not KEEP:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_server(request, nexra_bin):
    f = ServerFactory(request, nexra_bin)
    try:
        yield f
    finally:
        f.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup", "teardown"):
        servers = []
        fa = getattr(item, "funcargs", {}) or {}
        if isinstance(fa.get("server"), NexraServer):
            servers.append(fa["server"])
        if isinstance(fa.get("start_server"), ServerFactory):
            servers.extend(fa["start_server"].servers)
        for i, s in enumerate(servers):
            try:
                rep.sections.append((f"nexra server {i} ({s.backend}) logs", s.tail(2500)))
            except Exception:  # noqa: BLE001
                pass


# --------------------------------------------------------------------------
# Delegations: a test callee (callee.py) per test, closed afterwards.

@pytest.fixture
def callee():
    from callee import Callee
    c = Callee()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def receiver():
    """A second callee.py server, acting as the caller's callback receiver."""
    from callee import Callee
    c = Callee()
    try:
        yield c
    finally:
        c.close()
