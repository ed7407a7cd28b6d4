"""The Litestar app, assembled in one place from the plugins' hooks.

``BinganAppPlugin.on_app_init`` is the single bridge from pluggy to Litestar: it adds every
``register_routes`` handler, the template engine over the theme/plugin loader chain, the static
folders, the session middleware, CSRF protection and the login guard.
"""

from __future__ import annotations

import re

import logging
import os
from pathlib import Path
from urllib.parse import quote

from litestar import Litestar, MediaType, Request, Response, Router
from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins import InitPluginProtocol
from litestar.plugins.htmx import HTMXPlugin
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import DataError

from bingan.core import __version__, audit
from bingan.core.web.render import page
from bingan.core.web.headers import security_headers
from bingan.core.web.security import (
    PasswordChangeRequired, SessionMiddleware, actor, secure_cookies, staff_guard,
)
from bingan.core.web.templating import build_environment, static_dirs

log = logging.getLogger("bingan.web")
# Core's front-end files (htmx), served at /static/vendor: copied from npm into the package
# when it is built or set up (setup.py, package.json), so they are in the wheel; never committed.
# A plugin ships its own the same way under its static folder (capture: ECharts).
VENDOR = Path(__file__).resolve().parent / "vendor"


def vendor_dirs() -> list[Path]:
    """Core's front-end folder; an installation without htmx is broken, and says so."""
    if not (VENDOR / "htmx.min.js").is_file():
        log.error("htmx.min.js is missing from %s: every interactive form will do nothing. "
                  "Reinstall bingan (its build fetches it from npm) or run `npm ci` in a "
                  "checkout.", VENDOR)
        return []
    return [VENDOR]


def _wants_json(request: Request) -> bool:
    handler = request.scope.get("route_handler")
    if handler is not None and (handler.opt or {}).get("api_scope"):
        return True  # a system-credential API (FHIR ...) answers in JSON wherever it lives
    return request.url.path.startswith("/api") or "application/json" in request.headers.get(
        "accept", "")


def _not_authorized(request: Request, exc: Exception) -> Response:
    if _wants_json(request) or request.state.get("api_bearer"):
        headers = getattr(exc, "headers", None) or {}
        detail = "未登录或会话已过期"
        if "WWW-Authenticate" in headers:  # a system credential was missing or refused
            detail = getattr(exc, "detail", detail)
        return Response({"detail": detail}, status_code=401, headers=headers)
    target = "/login?next=" + quote(request.url.path)
    if request.headers.get("hx-request"):
        return Response("", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target)


def _password_change(request: Request, exc: Exception) -> Response:
    if _wants_json(request):
        return Response({"detail": "须先修改初始密码（/account/password）"}, status_code=403)
    target = "/account/password?next=" + quote(request.url.path)
    if request.headers.get("hx-request"):
        return Response("", status_code=403, headers={"HX-Redirect": target})
    return Redirect(target)


def _forbidden(request: Request, exc: Exception) -> Response:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "page.denied", actor=actor(request), outcome="denied",
                         detail={"path": request.url.path, "why": str(getattr(exc, "detail", ""))})
    except Exception:  # never hide the 403 behind an audit failure
        log.exception("could not audit a denied request")
    if _wants_json(request):
        return Response({"detail": getattr(exc, "detail", "无权限")}, status_code=403)
    return page(request, "error.html", status_code=403, title="无权访问",
                message=getattr(exc, "detail", "无权限"))


ERROR_TITLES = {400: "请求有误", 404: "页面不存在", 405: "不支持的请求方式", 413: "上传内容过大",
                500: "系统错误", 507: "存储空间已满"}


_TYPE_WORDS = {"int": "整数", "str": "文字", "float": "数字", "bool": "是/否", "object": "对象",
               "array": "列表", "null": "空值", "datetime": "日期时间", "date": "日期"}


_PARSER_WORDS = [  # msgspec's and Litestar's English, as a clerk or an integrator reads it
    (re.compile(r"Expected `([^`]*)`, got `([^`]*)`"), lambda m: f"应为{_TYPE_WORDS.get(m[1], m[1])}，"
     f"收到{_TYPE_WORDS.get(m[2], m[2])}"),
    (re.compile(r"Object missing required field `([^`]*)`"), lambda m: f"缺少必填字段 {m[1]}"),
    (re.compile(r"Object contains unknown field `([^`]*)`"), lambda m: f"含有未知字段 {m[1]}"),
    (re.compile(r"JSON is malformed[^-]*"), lambda m: "JSON 格式错误"),
    (re.compile(r"Input data was truncated"), lambda m: "内容不完整（被截断）"),
    (re.compile(r" - at `\$\.?([^`]*)`"), lambda m: f"（位置：{m[1] or '整体'}）"),
    (re.compile(r"Validation failed for \w+ [^\s：]+"), lambda m: "请求内容格式有误"),
]


def chinese_detail(exc: HTTPException) -> str:
    """An error's message in Chinese: parser messages (msgspec, Litestar) are translated, with
    what they say about each field; messages already in Chinese pass unchanged."""
    text = str(exc.detail or "")
    extra = getattr(exc, "extra", None)
    if text.startswith("Validation failed") and isinstance(extra, list):
        parts = []
        for e in extra:
            msg = e.get("message") if isinstance(e, dict) else str(e)
            key = e.get("key") if isinstance(e, dict) else None
            if msg:
                parts.append((f"{key}：" if key else "") + str(msg))
        if parts:
            text = f"{text}：{'；'.join(parts)}"
    for rx, fn in _PARSER_WORDS:
        text = rx.sub(fn, text)
    return text


def _http_error(request: Request, exc: HTTPException) -> Response:
    if _wants_json(request):
        return Response({"detail": chinese_detail(exc), "status_code": exc.status_code},
                        status_code=exc.status_code)
    if "staff" not in request.state.dict():
        # unmatched routes never pass the middleware: load the session so the frame shows
        from bingan.core.web.security import COOKIE, load_session

        request.state.update(load_session(request.app.state.rt, request.cookies.get(COOKIE)))
    title = ERROR_TITLES.get(exc.status_code, "请求错误")
    message = chinese_detail(exc)
    if isinstance(exc, NotFoundException) and message in ("Not Found", ""):
        message = "您访问的页面不存在或已被移除。"
    return page(request, "error.html", status_code=exc.status_code, title=title, message=message)


def _out_of_range(request: Request, exc: Exception) -> Response:
    log.info("value out of range on %s: %s", request.url.path, exc)
    return _http_error(request, HTTPException(status_code=400,
                                              detail="请求中的数值超出允许范围"))


def _server_error(request: Request, exc: Exception) -> Response:
    """Any error no handler expected: logged with its traceback (never patient data: the
    log line names the path only), and a plain 500 page or JSON. A full disk (or database
    disk) is a 507 saying that nothing was saved: the transaction rolled back."""
    from bingan.core.tasks import transient

    if transient(exc):
        log.error("storage full or database away on %s %s: %s", request.method,
                  request.url.path, exc)
        return _http_error(request, HTTPException(
            status_code=507, detail="服务器存储空间已满或数据库暂不可用，本次提交未保存。"
                                    "请通知系统管理员，稍后重试"))
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _wants_json(request):
        return Response({"detail": "系统错误，请稍后再试或联系管理员", "status_code": 500},
                        status_code=500)
    try:
        return page(request, "error.html", status_code=500, title="系统错误",
                    message="系统出现错误，已记录。请稍后再试或联系管理员。")
    except Exception:  # noqa: BLE001 - the error page itself failed: plain text
        return Response("系统错误", status_code=500, media_type="text/plain; charset=utf-8")


class BinganAppPlugin(InitPluginProtocol):
    """Bridge from the plugin manager to Litestar's app configuration."""

    def __init__(self, rt) -> None:
        self.rt = rt

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        rt = self.rt
        for handlers in rt.pm.hook.register_routes():
            app_config.route_handlers.extend(handlers or [])
        static = static_dirs(rt)
        for lp in rt.pm.loaded.values():
            if lp.info.static:
                app_config.route_handlers.append(create_static_files_router(
                    path=f"/static/{lp.name}", directories=[lp.info.static],
                    name=f"static-{lp.name}", opt={"public": True}))
        app_config.route_handlers.append(create_static_files_router(
            path="/static/theme", directories=static, name="static-theme", opt={"public": True}))
        vendor = vendor_dirs()
        if vendor:
            app_config.route_handlers.append(create_static_files_router(
                path="/static/vendor", directories=list[str | os.PathLike[str]](vendor),
                name="static-vendor",
                opt={"public": True}))
        app_config.template_config = TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(build_environment(rt)))
        app_config.middleware.insert(0, DefineMiddleware(SessionMiddleware))
        app_config.before_send.append(security_headers)
        app_config.before_send.append(secure_cookies)
        app_config.guards.append(staff_guard)
        app_config.csrf_config = CSRFConfig(
            secret=rt.secret_key.decode(), cookie_name="bingan_csrf",
            cookie_secure=rt.config.core.cookie_secure == "always", cookie_samesite="lax",
            cookie_httponly=True, exclude=["/healthz"])
        app_config.state = State({"rt": rt})
        app_config.exception_handlers.update({
            NotAuthorizedException: _not_authorized,
            PermissionDeniedException: _forbidden,
            PasswordChangeRequired: _password_change,
            HTTPException: _http_error,
            # a number too large for the database (an id >= 2**63 in a path or a form)
            OverflowError: _out_of_range,
            DataError: _out_of_range,
            500: _server_error,
        })
        # The schema describes the API, not patients: public, so integrators can read it.
        app_config.openapi_config = OpenAPIConfig(
            title="bingan 病案数字化管理平台 API", version=__version__, path="/schema",
            render_plugins=[SwaggerRenderPlugin()], use_handler_docstrings=True,
            openapi_router=Router("/schema", route_handlers=[], opt={"public": True}))
        return app_config


def create_app(rt, *, start_scheduler: bool = False, workers: int = 0) -> Litestar:
    """Build the app for an assembled runtime; optionally run the in-process scheduler and
    background task workers."""
    on_startup, on_shutdown = [], []
    if start_scheduler:
        from bingan.core.jobs import build_scheduler

        from bingan.core.defaults.jobs import audit_checkpoint

        sched = build_scheduler(rt)
        on_startup.append(lambda: audit_checkpoint(rt, "start"))  # anchored from the first minute
        on_startup.append(lambda: sched.start())
        on_shutdown.append(lambda: sched.shutdown(wait=False))
    if workers:
        from bingan.core.tasks import Worker, reclaim_dead_local

        pool = [Worker(rt, name=f"bingan-worker-{i}") for i in range(workers)]
        on_startup.append(lambda: reclaim_dead_local(rt))  # a killed server's tasks, at once
        on_startup.append(lambda: [w.start() for w in pool])
        on_shutdown.append(lambda: [w.stop() for w in pool])
    return Litestar(
        plugins=[BinganAppPlugin(rt), HTMXPlugin()],
        on_startup=on_startup, on_shutdown=on_shutdown,
        logging_config=None, debug=False,
        request_max_body_size=rt.config.core.max_upload_mb * 1024 * 1024,
    )


__all__ = ["BinganAppPlugin", "MediaType", "create_app"]
