"""``--simulate`` without the simulator installed (a gateway image): one clear line, exit 2,
and nothing asked of the cloud. The simulator is the ``simulate`` extra of eldercare-edge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# the CLI in a child process whose import system has no eldercare_sim
NO_SIMULATOR = """
import sys
sys.modules["eldercare_sim"] = None  # what a gateway image without the extra looks like
from eldercare_edge.installer.cli import main
sys.argv = ["eldercare-install", *sys.argv[1:]]
main()
"""


def test_simulate_without_the_simulator_says_how_to_install_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", NO_SIMULATOR, "walk-test", "--gateway", "GW-NOSIM-1",
         "--simulate", "--home-broker", "mqtt://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, check=False,
        # no installer session here: reaching the cloud would fail differently (exit 3)
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
             "XDG_CONFIG_HOME": str(tmp_path / "config")})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "install eldercare-edge[simulate]" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_gateway_runs_without_the_simulator_and_the_demo_broker() -> None:
    """A gateway image installs eldercare-edge alone: its modules import neither the
    simulator nor the embedded demo broker."""
    code = ("import sys\n"
            "sys.modules['eldercare_sim'] = None\nsys.modules['amqtt'] = None\n"
            "import eldercare_edge.cli, eldercare_edge.gateway, eldercare_edge.installer.cli\n"
            "import eldercare_edge.installer.walk, eldercare_edge.installer.simulate\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
