"""Issue 15: the live hostile flood, bigger, with figures; and the fuzz targets' rates.

    uv run python bench/bench_hostile.py                   # 20,000 hostile, 500 SOS
    uv run python bench/bench_hostile.py --hostile 100000 --sos-every 200 --fuzz-s 30
    uv run python bench/bench_hostile.py --fuzz-s 0        # the flood only

Prints, for a run of valid SOS alone (the baseline) and the same SOS among the hostile
messages: valid-SOS delivery (must be 100 %), peak RSS of the gateway and the cloud
ingest processes, their log growth in bytes, and the ratios hostile/baseline. Then, for
each decoder, how many inputs the coverage-guided fuzzer (atheris) ran per second in
``--fuzz-s`` seconds (tests/fuzz/atheris_decoders.py).

Both services run as processes (``eldercare-edge run``, ``eldercare-cloud run``) on two
Mosquitto brokers on loopback; what is sent is described in tests/hostile_flood.py.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _broker import start_mosquitto, stop  # noqa: E402
from hostile_flood import FloodResult, run_flood  # noqa: E402

FUZZ_SCRIPT = ROOT / "tests" / "fuzz" / "atheris_decoders.py"


def flood(work: Path, n_hostile: int, sos_every: int, hostile: bool) -> FloodResult:
    home, home_port = start_mosquitto(work / "home-broker")
    cloud, cloud_port = start_mosquitto(work / "cloud-broker")
    try:
        return run_flood(work / "run", ("127.0.0.1", home_port), ("127.0.0.1", cloud_port),
                         n_hostile=n_hostile, sos_every=sos_every, hostile=hostile,
                         settle_s=120)
    finally:
        stop(home)
        stop(cloud)


def fuzz_rate(target: str, seconds: int, work: Path) -> tuple[int, int, int]:
    """(inputs run, inputs per second, exit status) of one atheris run."""
    proc = subprocess.run(
        [sys.executable, str(FUZZ_SCRIPT), target, f"-max_total_time={seconds}",
         "-print_final_stats=1", f"-artifact_prefix={work}/"],
        cwd=work, capture_output=True, text=True, timeout=seconds + 120, check=False)
    out = proc.stdout + proc.stderr
    runs = re.search(r"stat::number_of_executed_units: (\d+)", out)
    rate = re.search(r"stat::average_exec_per_sec:\s+(\d+)", out)
    return (int(runs[1]) if runs else 0, int(rate[1]) if rate else 0, proc.returncode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hostile", type=int, default=20_000, help="hostile messages in all")
    ap.add_argument("--sos-every", type=int, default=40, help="one valid SOS per N messages")
    ap.add_argument("--fuzz-s", type=int, default=20, help="seconds per fuzz target (0: skip)")
    args = ap.parse_args()
    print("command: uv run python bench/bench_hostile.py " + shlex.join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        work = Path(tmp)
        base = flood(work / "baseline", args.hostile, args.sos_every, hostile=False)
        bad = flood(work / "hostile", args.hostile, args.sos_every, hostile=True)
        print(f"\nlive flood: {bad.hostile_home:,} hostile messages to the gateway, "
              f"{bad.hostile_cloud:,} to the cloud ingest, {bad.sos_sent} valid SOS "
              f"interleaved, sent in {bad.flood_s:.1f} s")
        print(f"{'':24}{'baseline (SOS only)':>22}{'hostile flood':>18}{'ratio':>8}")
        print(f"{'valid SOS delivered':24}{base.delivery:>21.1f}%{bad.delivery:>17.1f}%"
              f"{bad.delivery / base.delivery if base.delivery else 0:>8.2f}")
        for name in ("gateway", "cloud"):
            b, h = base.peak_rss_kb[name] / 1024, bad.peak_rss_kb[name] / 1024
            print(f"{'peak RSS ' + name:24}{b:>19.1f} MB{h:>15.1f} MB{h / b if b else 0:>8.2f}")
        for name in ("gateway", "cloud"):
            b, h = base.log_growth[name], bad.log_growth[name]
            print(f"{'log growth ' + name:24}{b:>16,} bytes{h:>12,} bytes"
                  f"{h / b if b else 0:>8.1f}")
        print(f"{'still up after':24}{base.alive_after!s:>22}  {bad.alive_after}")
        print(f"{'exit on SIGTERM':24}{base.exit_codes!s:>22}  {bad.exit_codes}")
        if bad.missing:
            print(f"MISSING SOS: {bad.missing[:20]}")
        if args.fuzz_s > 0:
            print(f"\ncoverage-guided fuzzing (atheris), {args.fuzz_s} s per target:")
            print(f"{'target':10}{'inputs':>12}{'inputs/s':>10}  result")
            for target in ("native", "z2m", "uplink", "serial"):
                (work / target).mkdir()
                runs, rate, code = fuzz_rate(target, args.fuzz_s, work / target)
                print(f"{target:10}{runs:>12,}{rate:>10,}  "
                      f"{'no finding' if code == 0 else f'FINDING (exit {code})'}")


if __name__ == "__main__":
    main()
