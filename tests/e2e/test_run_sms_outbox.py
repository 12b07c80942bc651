"""The run command's demo SMS outbox, as a newcomer meets it: the banner names every URL,
a red press sends the family an SMS that lands in the outbox page, and its responder link
opens the phone page in Chromium, where the newcomer can accept."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: Any, within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        time.sleep(0.2)


def test_demo_run_sms_outbox_page_and_its_link(tmp_path: Path) -> None:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: run scripts/test.sh")
    http = _free_port()
    cmd = [sys.executable, str(ROOT / "scripts" / "run.py"), "--data-dir",
           str(tmp_path / "data"), "--homes", "1", "--press-every", "3", "--seed", "7",
           "--http-port", str(http), "--duration", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        outbox = _wait(lambda: next((m.group(0) for ln in lines
                                     if (m := re.search(r"http://\S+/dev/sms", ln))), None),
                       90, "the banner's SMS outbox URL")
        banner = "".join(lines)
        assert f"http://127.0.0.1:{http}/console/" in banner
        assert f"http://127.0.0.1:{http}/family/" in banner
        assert "eldercare-cloud user add" in banner and "--role family" in banner

        def link() -> str | None:
            page = httpx.get(outbox, timeout=5).text
            found = re.search(r'href="(http://[^"]+/respond/[^"]+)"', page)
            return found.group(1).replace("&amp;", "&") if found else None

        _wait(link, 60, "an SMS with a responder link in the outbox")
        with playwright_sync.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(locale="zh-CN")
                page.goto(outbox)
                assert "短信发件箱" in page.title()
                first = page.locator("#messages li a.link").first
                first.wait_for(timeout=10000)
                assert "/respond/" in (first.get_attribute("href") or "")
                first.click()
                page.wait_for_url(re.compile(r".*/respond/.*token=.*"), timeout=10000)
                # the phone page of the contact who got the SMS, with its "I'll go" button
                page.locator("#bar button", has_text="我去").wait_for(timeout=15000)
                assert "王秀英" in page.locator("#main").inner_text()
            finally:
                browser.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        reader.join(10)
    assert proc.returncode == 0, "".join(lines)
