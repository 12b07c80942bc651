"""Coverage-guided fuzzing of one decoder with atheris (libFuzzer), with a time budget.

    uv run python tests/fuzz/atheris_decoders.py native -max_total_time=60
    uv run python tests/fuzz/atheris_decoders.py TARGET CORPUS_DIR -max_total_time=3600

TARGET is native, z2m, uplink or serial (tests/fuzz_targets.py). libFuzzer's own
options follow; ``-print_final_stats=1`` prints how many inputs ran and how fast. A
finding (any exception but DecodeError, a failed round trip) stops the run with a
non-zero status and writes the input to ``crash-*`` for a regression test.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["eldercare_protocols"]):
    import eldercare_protocols.native
    import eldercare_protocols.serial_frame
    import eldercare_protocols.uplink
    import eldercare_protocols.z2m  # noqa: F401

import fuzz_targets

#: tokens the mutator splices in (libFuzzer dictionary syntax): JSON syntax, our field
#: names, the hostile classes of issue 15
DICTIONARY = r"""
"{"
"}"
"["
"]"
":"
","
"\\"
"true"
"null"
"NaN"
"Infinity"
"1e400"
"9223372036854775808"
"\\ud800"
"\\udc80"
"\"seq\":"
"\"ts\":"
"\"data\":"
"\"kind\":"
"\"type\":"
"\"values\":"
"\"gas_density\":"
"\"action\":"
"\"device_seq\":"
"\"gateway_ts\":"
"\"records\":"
"2026-11-23T03:12:00Z"
"9999-12-31T23:59:59-23:00"
"$EC1,"
"*"
"""


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in fuzz_targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(fuzz_targets.TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    args = sys.argv[2:]
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    if not any(not a.startswith("-") for a in args):
        # no corpus directory given: start from the golden files in a fresh one
        corpus = work / "corpus"
        corpus.mkdir()
        for i, seed in enumerate(fuzz_targets.seeds(name)):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
        args.append(str(corpus))
    if not any(a.startswith("-dict=") for a in args):
        (work / "json.dict").write_text(DICTIONARY, encoding="utf-8")
        args.append(f"-dict={work / 'json.dict'}")
    atheris.Setup([sys.argv[0], *args], fuzz_targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
