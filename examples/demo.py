"""make demo: the whole lifecycle on one machine.

Starts `nexra serve --dev` on a free port with a throwaway SQLite
database, creates an org, starts the research agent (callee) and runs the
sales agent (caller), which walks the six steps. Everything is removed
afterwards. Exits with the sales agent's status (0 when every step did
what it should).

    python3 examples/demo.py [path/to/nexra]
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))

from nexra_sdk import NexraClient  # noqa: E402

LISTEN_RE = re.compile(r"listening on (http://[0-9.]+:[0-9]+)")


def wait_for(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"demo: {what} did not happen within {timeout} s")


def stop(proc, name):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"demo: {name} had to be killed", file=sys.stderr)
    return proc.returncode


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                             os.path.join(ROOT, "build", "nexra"))
    work = tempfile.mkdtemp(prefix="nexra-demo-")
    log_path = os.path.join(work, "server.log")
    procs = []
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXRA_")}
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [binary, "serve", "--listen", "127.0.0.1:0",
                 "--db", "sqlite:" + os.path.join(work, "nexra.db"),
                 "--master-key-file", os.path.join(work, "master.key"), "--dev"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append((server, "nexra serve"))

        def listening():
            if server.poll() is not None:
                raise SystemExit(f"demo: nexra serve exited with {server.returncode}:\n"
                                 + open(log_path, errors="replace").read()[-2000:])
            m = LISTEN_RE.search(open(log_path, errors="replace").read())
            return m and m.group(1)
        url = wait_for("nexra serve listening", listening)
        print(f"demo: nexra serve --dev on {url} (SQLite in a temporary directory)")

        org = NexraClient.register_org("Acme AI", "growth", base_url=url)
        print(f"demo: org {org['org_id']} created; its live key goes to both agents")
        env.update({"NEXRA_SERVER": url, "NEXRA_API_KEY": org["api_key"],
                    "PYTHONUNBUFFERED": "1"})

        ready = os.path.join(work, "research.ready")
        research = subprocess.Popen([sys.executable, os.path.join(HERE, "research_agent.py"),
                                     "--ready-file", ready], env=env)
        procs.append((research, "research agent"))
        wait_for("research agent ready",
                 lambda: os.path.exists(ready) or (research.poll() is not None and
                                                   SystemExit("demo: research agent exited")))
        if research.poll() is not None:
            raise SystemExit(f"demo: research agent exited with {research.returncode}")
        print("demo: research agent serving webhooks; starting the sales agent")

        rc = subprocess.call([sys.executable, os.path.join(HERE, "sales_agent.py")], env=env)
        if rc != 0:
            print(f"demo: the sales agent failed (exit {rc}); server log tail:\n"
                  + open(log_path, errors="replace").read()[-2000:], file=sys.stderr)
        return rc
    finally:
        for proc, name in reversed(procs):
            rc = stop(proc, name)
            if name == "nexra serve" and rc not in (0, None):
                print(f"demo: nexra serve exited with {rc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
