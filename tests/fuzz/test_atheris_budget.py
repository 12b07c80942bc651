"""The coverage-guided fuzz targets, each run for a short budget in CI (issue 15).

Longer runs are the same command with a bigger ``-max_total_time`` (see
tests/fuzz/atheris_decoders.py); bench/bench_hostile.py prints the inputs per second.
A finding makes the run exit non-zero and this test fail with the crash input.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

SCRIPT = Path(__file__).with_name("atheris_decoders.py")
#: seconds per target: four targets stay under 40 s of CI time
BUDGET_S = 7


@pytest.mark.parametrize("target", ["native", "z2m", "uplink", "serial"])
def test_fuzz_target_survives_its_budget(target: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), target, f"-max_total_time={BUDGET_S}",
         "-print_final_stats=1", "-rss_limit_mb=1024", f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path, capture_output=True, text=True, timeout=BUDGET_S + 60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{target}: finding\n{out[-4000:]}"
    runs = re.search(r"stat::number_of_executed_units: (\d+)", out)
    assert runs is not None and int(runs[1]) > 1000, out[-2000:]
