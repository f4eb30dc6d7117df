"""make demo's walkthrough (examples/demo.py) runs against the binary under
test, exits 0 and prints all six lifecycle steps."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "examples", "demo.py")
STEPS = ["Register", "Discover", "Policy check", "Delegate", "Execute", "Settle"]


def test_demo_walks_the_six_steps(nexra_bin):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXRA_")}
    r = subprocess.run([sys.executable, DEMO, nexra_bin], capture_output=True, text=True,
                       timeout=300, env=env)
    out = r.stdout
    assert r.returncode == 0, out[-4000:] + r.stderr[-4000:]
    pos = [out.index(f"== Step {i}/6: {name} ==") for i, name in enumerate(STEPS, 1)]
    assert pos == sorted(pos)
    assert "PolicyBlocked by prod-policy-v3" in out
    assert "signature OK, token OK" in out
    assert "trust of research-agent-v2: 0.5000 -> 0.6000" in out
    assert "hired under prod-policy-v3" in out
    assert out.rstrip().endswith("demo: all six steps done")
