"""The C storage conformance suites against the throwaway PostgreSQL
cluster: tests/unit/test_store.c (the store.h function table) and
tests/unit/test_ledger.c with tests/unit/test_ledger_pg.c (the delegation
ledger: holds, settlement, audit numbering, races between connections).
The unit runner runs them on SQLite; here they run on PostgreSQL too."""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("suite", ["store_", "ledger_"])
def test_store_conformance_on_postgres(pg_cluster, nexra_bin, suite):
    unit = os.path.join(os.path.dirname(nexra_bin), "unit")
    assert os.access(unit, os.X_OK), f"unit test binary missing at {unit} (make unit)"
    uri = pg_cluster.uri(pg_cluster.new_database())
    env = dict(os.environ, NEXRA_TEST_PG_URI=uri)
    p = subprocess.run([unit, suite], env=env, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "skipped" not in out, "PostgreSQL cases were skipped:\n" + out
    assert "0 failed" in out and " passed" in out, out
