"""The operator console and the responders' phone page, served by the cloud itself.

Monitoring-centre PCs are often cut off from the internet, so everything the pages
need (HTML, CSS, ES modules, the schematic care map, the alert beep, which is
synthesised with WebAudio) comes from this server; nothing is loaded from a CDN.
There is no build step: the files in ``dashboards/`` are what the browser runs, so
a change to them is live on the next reload.

Routes (none of them in the OpenAPI: they are pages, not API):

- ``/`` and ``/console`` → ``/console/``, the operator console;
- ``/respond/{alert_id}?token=…``, the page a responder's signed link opens
  (``care.links.link_url`` builds those links); the page calls
  ``/api/v1/respond/{alert_id}`` with the token, the link is the only credential;
- ``/family/``, a family member's view of their elder (with an account);
- ``/job/`` (a service worker's account: today's orders) and ``/job/{order_id}?token=…``
  (a worker's signed link to one order), the service worker's phone page;
- ``/visit/?token=…``, the care visitor's phone page;
- ``/ui/…``, the static files themselves.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from eldercare_cloud.auth.models import Role, UserCreate, UserUpdate
from eldercare_cloud.auth.users import UserService
from eldercare_cloud.clock import SystemClock
from eldercare_cloud.db import Database
from eldercare_cloud.errors import ConfigError
from eldercare_cloud.settings import CloudSettings

log = logging.getLogger(__name__)

#: the repository's dashboards/ folder, when the cloud runs from a checkout
DEFAULT_DASHBOARDS_DIR = Path(__file__).resolve().parents[3] / "dashboards"

#: the pages, relative to the dashboards folder
CONSOLE_PAGE = Path("console/index.html")
RESPOND_PAGE = Path("family/respond.html")
FAMILY_PAGE = Path("family/index.html")
WORKER_PAGE = Path("worker/index.html")
VISITOR_PAGE = Path("visitor/index.html")

#: where each page is served: ``/x/`` (``/x`` redirects there), or a path with an id the
#: page reads from its own location (and a signed token from its query)
PAGE_ROUTES: tuple[tuple[str, Path], ...] = (
    ("/console/", CONSOLE_PAGE),
    ("/respond/{alert_id}", RESPOND_PAGE),
    ("/family/", FAMILY_PAGE),
    ("/job/", WORKER_PAGE),
    ("/job/{order_id}", WORKER_PAGE),
    ("/visit/", VISITOR_PAGE),  # the care visitor's phone page (issue 11)
)

#: pages and modules change with a deployment, not between reloads of one session; "no-cache"
#: still lets the browser keep a copy, it only revalidates (ETag) before using it
_NO_CACHE = {"Cache-Control": "no-cache"}
#: the pages read nothing from other origins; a responder page must not leak its token
_PAGE_HEADERS = {
    **_NO_CACHE,
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; connect-src 'self'; "
                                "frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class _Static(StaticFiles):
    """Static files that revalidate (no stale console after an upgrade) and say what they are."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_NO_CACHE)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def dashboards_dir(settings: CloudSettings) -> Path:
    """Where the pages are: ``settings.http.dashboards_dir`` or the repository's dashboards/."""
    return (settings.http.dashboards_dir or DEFAULT_DASHBOARDS_DIR).resolve()


def mount_console(app: FastAPI, settings: CloudSettings) -> bool:
    """Serve the console and the phone page from ``app``; False when there is nothing to serve.

    An explicitly configured folder that lacks the console is a configuration error (a
    typo would otherwise leave a monitoring centre with a blank screen and a green health
    check); a missing default folder (a wheel installed without the checkout, an
    ingest-only worker) only logs, because the API is still useful without the pages.
    """
    root = dashboards_dir(settings)
    if not (root / CONSOLE_PAGE).is_file():
        if settings.http.dashboards_dir is not None:
            raise ConfigError(f"ELDERCARE_CLOUD_HTTP__DASHBOARDS_DIR="
                              f"{settings.http.dashboards_dir} has no {CONSOLE_PAGE}")
        log.warning("no console pages at %s: serving the API only (set "
                    "ELDERCARE_CLOUD_HTTP__DASHBOARDS_DIR)", root)
        return False

    def page(relative: Path) -> Callable[[], Awaitable[Response]]:
        async def serve() -> Response:
            path = root / relative
            if not path.is_file():
                return PlainTextResponse(f"page {relative} is missing", status_code=404)
            return FileResponse(path, media_type="text/html; charset=utf-8",
                                headers=_PAGE_HEADERS)
        return serve

    def redirect(to: str) -> Callable[[], Awaitable[Response]]:
        async def go() -> Response:
            return RedirectResponse(to, status_code=307)
        return go

    app.add_api_route("/", redirect("/console/"), include_in_schema=False)
    for path, relative in PAGE_ROUTES:
        app.add_api_route(path, page(relative), include_in_schema=False)
        if path.endswith("/"):
            app.add_api_route(path.rstrip("/"), redirect(path), include_in_schema=False)

    app.mount("/ui", _Static(directory=root, html=False), name="ui")
    return True


# -- the one-command demo ------------------------------------------------------------------

DEMO_OPERATOR = "demo-operator"


@dataclass(frozen=True)
class ConsoleLogin:
    url: str
    username: str
    password: str

    def banner(self) -> str:
        """What the run command prints, so a newcomer can log in at once."""
        return (f"控制台 Console:   {self.url}\n"
                f"值班员 Operator:  {self.username} / {self.password}\n"
                f"(demo login; the password is new on every start)")


async def demo_operator_login(db: Database, settings: CloudSettings, http_url: str, *,
                              username: str = DEMO_OPERATOR,
                              password: str | None = None) -> ConsoleLogin:
    """Load the demo district (idempotent) and give the demo operator a fresh password.

    Called by the run command after the cloud is up (``scripts/run.py``). The password is
    generated on every start unless given, and printed once: there is no well-known
    password to forget to change. Refused in production, where operators are created
    with ``eldercare-cloud user add``.
    """
    if settings.environment == "production":
        raise ConfigError("the demo operator is for development and demos, not production")
    from eldercare_cloud.demo import data, load_demo

    await load_demo(db, tenant=settings.tenant)
    users = UserService(db, SystemClock(), settings.auth.secret_key.get_secret_value(),
                        settings.tenant, settings.auth.access_token_ttl_s)
    await users.migrate()
    password = password or secrets.token_urlsafe(9)
    existing = next((u for u in await users.list(settings.tenant) if u.username == username),
                    None)
    if existing is None:
        await users.create(UserCreate(username=username, password=password, role=Role.OPERATOR,
                                      display_name="演示值班员",
                                      district_ids=[str(data.DISTRICT["id"])]))
    else:
        await users.update(existing.id, UserUpdate(password=password, active=True),
                           settings.tenant)
    return ConsoleLogin(url=f"{http_url.rstrip('/')}/console/", username=username,
                        password=password)
