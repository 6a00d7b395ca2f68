"""RFC 9457 problem+json errors with a Chinese `detail` fit to show a resident."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_TYPE_BASE = "https://linli.example/problems/"
MEDIA_TYPE = "application/problem+json"

_STATUS_DETAILS = {
    400: "请求有误。",
    401: "请先登录或提供有效的服务令牌。",
    403: "您没有权限进行此操作。",
    404: "没有找到相关记录。",
    405: "不支持这种请求方式。",
    409: "操作与当前状态冲突。",
    413: "提交的内容太大。",
    422: "提交的信息有误，请检查后重试。",
    429: "尝试次数过多，请稍后再试。",
    500: "系统出了点问题，请稍后再试。",
}

_FIELD_ERRORS = {
    "missing": "缺少必填项",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "greater_than": "数值太小",
    "less_than": "数值太大",
    "enum": "不是可选的值",
    "literal_error": "不是可选的值",
    "int_parsing": "应为整数",
    "date_from_datetime_parsing": "日期格式不对",
    "date_parsing": "日期格式不对",
    "datetime_parsing": "时间格式不对",
    "datetime_from_date_parsing": "时间格式不对",
    "json_invalid": "不是有效的 JSON",
    "value_error": "取值不对",
}


class Problem(Exception):
    """A refusal or error the API reports as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("-", " ")
        self.extra = extra or {}


def problem_response(
    status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> JSONResponse:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title or code.replace("-", " "),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def not_found(what: str) -> Problem:
    """A 404 naming what was not found, in Chinese."""
    return Problem(404, "not-found", f"没有找到这个{what}。")


def _field_message(error: dict[str, Any]) -> str:
    location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    message = _FIELD_ERRORS.get(str(error.get("type")), "取值不对")
    return f"{location}：{message}" if location else message


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.code, exc.detail, title=exc.title, **exc.extra)


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "type": e.get("type")}
        for e in exc.errors()
    ]
    detail = "提交的信息有误：" + "；".join(_field_message(e) for e in exc.errors()[:5]) + "。"
    return problem_response(
        422, "validation-error", detail, title="validation error", errors=errors
    )


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = (
        exc.detail
        if _is_chinese(exc.detail)
        else _STATUS_DETAILS.get(exc.status_code, "请求失败。")
    )
    response = problem_response(exc.status_code, f"http-{exc.status_code}", str(detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_data_error(_request: Request, _exc: Exception) -> JSONResponse:
    # The database refused a value the schema let through, e.g. an id beyond its integer range.
    return problem_response(422, "value-out-of-range", "提交的编号或数值超出了范围，请核对后再试。")


async def _on_unexpected(_request: Request, _exc: Exception) -> JSONResponse:
    return problem_response(500, "internal-error", _STATUS_DETAILS[500])


def _is_chinese(text: object) -> bool:
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected)
