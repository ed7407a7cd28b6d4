"""Parser messages in Chinese (issue 12): a JSON body of the wrong shape is answered with what
is wrong, in Chinese, by field; messages already in Chinese pass unchanged."""

from __future__ import annotations

from litestar.exceptions import ValidationException

from bingan.core.web.app import chinese_detail
from webutil import csrf_token, login, make_staff, web_client


def test_parser_messages_are_translated():
    e = ValidationException("Validation failed for POST /api/x", extra=[
        {"message": "Expected `int`, got `str` - at `$.page`", "key": "body"}])
    assert chinese_detail(e) == "请求内容格式有误：body：应为整数，收到文字（位置：page）"
    assert chinese_detail(ValidationException("JSON is malformed: invalid character (byte 0)")) \
        == "JSON 格式错误"
    assert chinese_detail(ValidationException("Object missing required field `name`")) \
        == "缺少必填字段 name"
    assert chinese_detail(ValidationException("页码无效")) == "页码无效"


def test_a_bad_json_body_is_answered_in_chinese(rt):
    from sqlalchemy import select

    from bingan.core.models import Role

    make_staff(rt, "R0001", ["records"])
    with rt.sessions() as s, s.begin():
        role = s.scalar(select(Role).where(Role.name == "records"))
        role.permissions = sorted(set(role.permissions or []) | {"search.use"})
    with web_client(rt) as c:
        login(c, "R0001")
        r = c.post("/api/search/simple", content=b"{not json",
                   headers={"content-type": "application/json", "x-csrftoken": csrf_token(c)})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert "JSON" in detail and not any(w in detail for w in ("malformed", "Validation"))


def test_an_administrator_is_not_told_to_ask_the_administrator(rt):
    from webutil import login_admin, make_admin

    make_admin(rt)
    with web_client(rt) as c:
        login_admin(c)
        r = c.get("/audit")
        assert r.status_code == 403
        assert "角色权限" in r.text and "请联系" not in r.text and "audit.read" not in r.text
