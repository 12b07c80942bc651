"""eldercare_cloud.web: the pages are served by the cloud itself, nothing comes from
elsewhere, and a wrong configuration is refused instead of serving a blank console."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import db_support
from eldercare_cloud.errors import ConfigError
from eldercare_cloud.settings import CloudSettings
from eldercare_cloud.web import ConsoleLogin, demo_operator_login, mount_console

from .conftest import ConsoleStack

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
EXTERNAL = re.compile(r"""(?:src|href|url|import|from|fetch)\s*[=(]?\s*["'`]?\s*(?:https?:)?//""")


@pytest.mark.integration
def test_pages_and_assets_over_http(stack: ConsoleStack) -> None:
    with stack.http() as client:
        home = client.get("/", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/console/"
        console = client.get("/console/")
        assert console.status_code == 200
        assert console.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in console.headers["content-security-policy"]
        assert console.headers["cache-control"] == "no-cache"
        assert 'lang="zh-CN"' in console.text and "/ui/console/app.js" in console.text
        respond = client.get("/respond/AL-anything", params={"token": "x"})
        assert respond.status_code == 200 and "/ui/family/respond.js" in respond.text
        assert respond.headers["referrer-policy"] == "no-referrer"
        for page, script in (("/family/", "family/family.js"), ("/job/", "worker/worker.js"),
                             ("/job/SO-1", "worker/worker.js"),
                             ("/visit/", "visitor/")):
            resp = client.get(page)
            assert resp.status_code == 200 and f"/ui/{script}" in resp.text, page
            assert resp.headers["referrer-policy"] == "no-referrer", page
        for bare in ("/console", "/family", "/job", "/visit"):
            resp = client.get(bare, follow_redirects=False)
            assert resp.status_code == 307 and resp.headers["location"] == bare + "/", bare
        module = client.get("/ui/console/app.js")
        assert module.status_code == 200
        assert "javascript" in module.headers["content-type"]
        assert module.headers["x-content-type-options"] == "nosniff"
        table = client.get("/ui/shared/i18n/zh-CN.json")
        assert table.status_code == 200 and table.json()["app.title"]
        # nothing outside the dashboards folder is reachable
        assert client.get("/ui/../pyproject.toml").status_code == 404
        assert client.get("/ui/%2e%2e/pyproject.toml").status_code == 404
        assert client.get("/ui/nope.js").status_code == 404
        # pages are not API: they stay out of the OpenAPI document
        paths = client.get("/openapi.json").json()["paths"]
        assert not any(p.startswith(("/console", "/respond", "/family", "/job", "/visit", "/ui"))
                       for p in paths)
        assert "/api/v1/console/alerts/{alert_id}/dispatch" in paths


def test_no_asset_comes_from_another_origin() -> None:
    """The centre's PCs may be offline: no CDN, no web font, no remote script."""
    files = [p for p in DASHBOARDS.rglob("*") if p.suffix in {".html", ".js", ".css"}]
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not EXTERNAL.search(text), path
        assert not re.search(r"https?://", text), path
        assert "@import" not in text, path


def test_a_configured_folder_without_the_console_is_refused(tmp_path: Path) -> None:
    settings = CloudSettings(environment="test", data_dir=tmp_path,
                             http={"dashboards_dir": tmp_path / "missing"})
    with pytest.raises(ConfigError, match=r"console/index\.html"):
        mount_console(FastAPI(), settings)


def test_the_default_folder_serves_the_repository_dashboards(tmp_path: Path) -> None:
    app = FastAPI()
    assert mount_console(app, CloudSettings(environment="test", data_dir=tmp_path))
    with TestClient(app) as client:
        assert "安心守护" in client.get("/console/").text


async def test_demo_operator_is_refused_in_production(tmp_path: Path) -> None:
    from eldercare_cloud.db import Database

    settings = CloudSettings(environment="production", data_dir=tmp_path,
                             auth={"secret_key": "a-real-secret-for-this-test-only-0123456789"})
    async with Database(db_support.target(tmp_path / "db.sqlite3")) as db:
        with pytest.raises(ConfigError, match="demo"):
            await demo_operator_login(db, settings, "http://127.0.0.1:1")


async def test_demo_operator_gets_a_fresh_password_each_start(tmp_path: Path) -> None:
    from eldercare_cloud.auth.users import UserService
    from eldercare_cloud.clock import SystemClock
    from eldercare_cloud.db import Database
    from eldercare_cloud.errors import AuthenticationError

    settings = CloudSettings(environment="development", data_dir=tmp_path)
    async with Database(db_support.target(tmp_path / "db.sqlite3")) as db:
        first = await demo_operator_login(db, settings, "http://127.0.0.1:8080")
        second = await demo_operator_login(db, settings, "http://127.0.0.1:8080/")
        assert isinstance(second, ConsoleLogin)
        assert second.url == "http://127.0.0.1:8080/console/"
        assert first.password != second.password and len(second.password) >= 12
        assert second.username in second.banner() and second.password in second.banner()
        users = UserService(db, SystemClock(), settings.auth.secret_key.get_secret_value(),
                            settings.tenant, 60)
        token = await users.authenticate(second.username, second.password)
        assert token.role.value == "operator"
        with pytest.raises(AuthenticationError):
            await users.authenticate(first.username, first.password)
        principal = await users.principal(token.access_token)
        assert principal.district_ids == frozenset({"D-XH"})
