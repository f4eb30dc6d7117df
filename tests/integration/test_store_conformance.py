"""The C storage conformance suite (tests/unit/test_store.c) against the
throwaway PostgreSQL cluster: one suite over the store.h function table,
run on SQLite by the unit runner and here on PostgreSQL as well."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def test_store_conformance_on_postgres(pg_cluster, nexra_bin):
    unit = os.path.join(os.path.dirname(nexra_bin), "unit")
    assert os.access(unit, os.X_OK), f"unit test binary missing at {unit} (make unit)"
    uri = pg_cluster.uri(pg_cluster.new_database())
    env = dict(os.environ, NEXRA_TEST_PG_URI=uri)
    p = subprocess.run([unit, "store_"], env=env, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "skipped" not in out, "PostgreSQL cases were skipped:\n" + out
    assert "0 failed" in out and " passed" in out, out
