"""Refusals of the service desk: the HTTP status comes from the cloud's own error classes,
and each carries a stable ``code`` and a Chinese message for the console (the English
``detail`` stays for logs and API clients)."""

from __future__ import annotations

from eldercare_cloud.errors import (
    CloudError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)


class DeskError(CloudError):
    code: str
    zh: str

    def __init__(self, code: str, message: str, zh: str) -> None:
        super().__init__(message)
        self.code = code
        self.zh = zh


class DeskInvalid(DeskError, InvalidRequestError):
    """422: the request names things that do not fit together."""


class DeskConflict(DeskError, ConflictError):
    """409: valid, but the record's state does not allow it now."""


class DeskNotFound(DeskError, NotFoundError):
    """404: no such record, or not one the caller may know of."""


def not_found(what: str, record_id: str) -> DeskNotFound:
    names = {"order": "服务工单", "request": "服务请求", "provider": "服务商", "worker": "服务人员",
             "resident": "老人", "plan": "服务计划", "followup": "整改单", "visit": "服务记录",
             "service_type": "服务项目", "user": "账号", "district": "区县"}
    return DeskNotFound(f"{what}_not_found", f"{what} {record_id} not found",
                        f"{names.get(what, what)} {record_id} 不存在")
