"""Test-support entry point: ``eldercare-cloud run`` whose ingest SIGKILLs its own process
right after a commit that has acks to send, before it publishes them (the crash window of
invariant 1: committed, never acked). Configured by the same ELDERCARE_CLOUD_* variables.

Production settings carry no such hook: only the crash tests start this file
(``python tests/crash_entry.py``); the hook reaches ingest as a constructor argument."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from eldercare_cloud.ingest.models import CommitInfo
from eldercare_cloud.service import run_until_signalled
from eldercare_cloud.settings import load_settings

log = logging.getLogger("crash_entry")


def die_before_ack(info: CommitInfo) -> None:
    if info.acks:
        log.warning("crash drill: killing this process after the commit, before the ack")
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_until_signalled(load_settings(), before_ack=die_before_ack))


if __name__ == "__main__":
    sys.exit(main())
