"""Render a page inside the frame (menu, user, notifications)."""

from __future__ import annotations

import functools
from typing import Any

import anyio

from litestar import MediaType, Request
from litestar.response import Template

from bingan.hooks.types import NavItem, StaffRef


def visible_nav(rt, staff: StaffRef | None) -> list[tuple[str, list[NavItem]]]:
    """Menu groups with only the items this staff member may use."""
    if staff is None:
        return []
    items: list[NavItem] = []
    for group in rt.pm.hook.register_nav(rt=rt):
        items.extend(group or [])
    items = [i for i in items if i.permission is None or i.permission in staff.permissions]
    items.sort(key=lambda i: (i.order, i.label))
    groups: dict[str, list[NavItem]] = {}
    for i in items:
        groups.setdefault(i.group, []).append(i)
    return list(groups.items())


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Template:
    rt = request.app.state.rt
    staff = request.state.get("staff")
    ctx = {
        "staff": staff,
        "nav": visible_nav(rt, staff),
        "hospital": rt.config.core.hospital_name,
        "unread": request.state.get("unread", 0),
        "path": request.url.path,
        "client_ip": request.state.get("client_ip"),
        **context,
    }
    return Template(template_name=template, context=ctx, status_code=status_code,
                    media_type=MediaType.HTML)


def in_thread(fn):
    """Run a blocking (database) handler in a worker thread.

    Use this instead of Litestar's ``sync_to_thread=True``: Litestar 2.x wraps such a handler
    twice when another HTTP method shares its path, and a handler returning a Response then
    answers 500 (tests/test_web_render.py keeps that covered).
    """

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return wrapper
