"""The cloud's installer API over HTTP (stdlib urllib: the tool runs on a laptop with
nothing but this package). Every failure becomes one ``CloudRequestError`` line."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from eldercare_edge.installer.errors import CloudRequestError, NotLoggedInError, UsageError

API = "/api/v1"


def check_cloud_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(f"cloud URL must look like https://host[:port], got {url!r}")
    return url.rstrip("/")


class CloudClient:
    def __init__(self, cloud: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.cloud = check_cloud_url(cloud)
        self.token = token
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, *, body: Any = None,
                 form: dict[str, str] | None = None, query: dict[str, Any] | None = None,
                 timeout_s: float | None = None, raw: bool = False) -> Any:
        url = f"{self.cloud}{API}{path}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read())
            if exc.code == 401:
                raise NotLoggedInError(f"云端拒绝登录 / the cloud refused the login: {detail}; "
                                       "run `eldercare-install login` again") from exc
            raise CloudRequestError(f"{method} {path}: {exc.code} {detail}",
                                    status=exc.code) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CloudRequestError(f"无法连接云端 / cannot reach the cloud at {self.cloud}: "
                                    f"{reason}") from exc
        if raw:
            return payload.decode()
        return json.loads(payload) if payload else None

    def get(self, path: str, **kw: Any) -> Any:
        return self._request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._request("POST", path, body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._request("PUT", path, body=body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self._request("DELETE", path, **kw)

    def login(self, username: str, password: str) -> dict[str, Any]:
        token: dict[str, Any] = self._request(
            "POST", "/auth/token", form={"username": username, "password": password,
                                         "grant_type": "password"})
        return token


def _detail(payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return payload[:200].decode(errors="replace")
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    return str(detail)
