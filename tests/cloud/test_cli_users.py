"""``eldercare-cloud user add/list`` as a subprocess, as an operator would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import db_support

CLI = [sys.executable, "-m", "eldercare_cloud.cli"]


def run(args: list[str], data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ELDERCARE_CLOUD_DATA_DIR": str(data_dir)}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_first_admin_then_scoped_accounts(tmp_path: Path) -> None:
    added = run(["user", "add", "--username", "root", "--role", "admin", "--password-stdin"],
                tmp_path, "a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "created admin root" in added.stdout
    [(stored,)] = db_support.rows(db_support.env_target(tmp_path / "cloud.sqlite3"),
                                  "SELECT password_hash FROM users WHERE username = 'root'")
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored
    # an operator needs a district that exists; the refusal says so and stores nothing
    refused = run(["user", "add", "--username", "op1", "--role", "operator", "--district",
                   "D-NOWHERE", "--password-stdin"], tmp_path, "another password\n")
    assert refused.returncode == 1 and "district D-NOWHERE does not exist" in refused.stderr
    short = run(["user", "add", "--username", "x1x", "--role", "admin", "--password-stdin"],
                tmp_path, "s3cr3t\n")
    assert short.returncode == 2 and "password" in short.stderr
    assert "s3cr3t" not in short.stderr + short.stdout
    listed = run(["user", "list"], tmp_path)
    assert listed.returncode == 0
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["root"]
