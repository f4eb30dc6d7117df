"""sdk/python is pip-installable without a network (Debian's setuptools as
the build backend) and installs both `nexra_sdk` and `nexra`."""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(HERE, "..", "..", "sdk", "python")


def test_pip_install_offline(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SDK, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info",
                                                            "build"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                        "--no-build-isolation", "--no-deps", "--target", str(target),
                        str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c",
                        "import nexra_sdk, nexra; "
                        "assert nexra.NexraClient is nexra_sdk.NexraClient; "
                        "print(nexra_sdk.__file__)"],
                       capture_output=True, text=True, cwd=str(tmp_path),
                       env={"PYTHONPATH": str(target), "PATH": os.environ.get("PATH", "")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(target))
