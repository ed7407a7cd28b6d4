"""Asking for the paper record of a record not digitized (issue 12): the link beside it in
search results, the apply lookup and the viewer (``paper_record_request``; without the
warehouse plugin this plugin's record-room request answers), the request, the record room's
answer, notifications, bad input."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sqlalchemy import func, select

from reading_world import C, E1, staff_no
from webutil import events, login, post_form, web_client
from bingan.core.models import Notification, Staff
from bingan_reading.models import PaperRequest

DOC = staff_no("physician", "none")
ROOM = staff_no("records", "none")


def _count(rt) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(PaperRequest))


def _notes(rt, no: str) -> list[str]:
    with rt.sessions() as s:
        sid = s.scalar(select(Staff.id).where(Staff.staff_no == no))
        return list(s.scalars(select(Notification.title).where(Notification.staff_id == sid)
                              .order_by(Notification.id)))


def _menu(html: str) -> str:
    return re.search(r'<nav class="sidebar".*?</nav>', html, re.S).group(0)


def _without_warehouse(rt) -> None:
    """Reading's own record-room request is what answers when the warehouse plugin (whose
    borrowing wins) is not there: take it out of this test's runtime before the app is built."""
    plugin = rt.pm.get_plugin("warehouse")
    if plugin is not None:
        rt.pm.unregister(plugin)


def test_hook_paper_record_request(world):
    from bingan.core import records
    from bingan.core.staff import get_staff, staff_ref

    rt = world.rt
    with rt.sessions() as s:
        adm = records.to_ref(records.get_admission(s, C))
        doc = staff_ref(get_staff(s, DOC))
        auditor = staff_ref(get_staff(s, staff_no("auditor", "none")))
    if rt.pm.get_plugin("warehouse") is not None:  # its borrowing answers first
        link = rt.pm.hook.paper_record_request(admission=adm, user=doc, rt=rt)
        assert link.href.startswith("/warehouse/loans/request?barcode=")
        # someone the warehouse's permissions leave out gets no second queue here
        without = dataclasses.replace(doc, permissions=doc.permissions - {"warehouse.request"})
        assert rt.pm.hook.paper_record_request(admission=adm, user=without, rt=rt) is None
        _without_warehouse(rt)
    link = rt.pm.hook.paper_record_request(admission=adm, user=doc, rt=rt)
    assert (link.label, link.href) == ("调阅纸质病案", f"/reading/paper?admission_no={C}")
    assert rt.pm.hook.paper_record_request(admission=adm, user=auditor, rt=rt) is None


def test_paper_request_from_search_to_the_record_room(world):
    from bingan.core.models import Role

    rt = world.rt
    _without_warehouse(rt)
    with rt.sessions() as s, s.begin():  # the record room may search (granted on 角色权限)
        role = s.scalar(select(Role).where(Role.name == "records"))
        role.permissions = sorted(set(role.permissions or []) | {"search.use"})
    with web_client(rt) as doc, web_client(rt) as room:
        assert login(doc, DOC).status_code in (302, 303)
        assert login(room, ROOM).status_code in (302, 303)
        # the search result says the record is paper only and offers the request
        r = room.get("/search/simple", params={"admission_no": C})
        row = re.search(rf'data-admission="{C}".*?</tr>', r.text, re.S).group(0)
        assert "纸质" in row and f'href="/reading/paper?admission_no={C}"' in row
        # a digitized record has no such link
        r = room.get("/search/simple", params={"admission_no": E1})
        assert f'data-admission="{E1}"' in r.text and "/reading/paper?admission_no=" not in r.text
        form = doc.get(f"/reading/paper?admission_no={C}")
        assert form.status_code == 200 and "本病案尚未数字化" in form.text and "张*" in form.text
        assert doc.get("/reading/paper?admission_no=ZY000").status_code == 404
        # the viewer of a record without pages offers it too (to a reader allowed to open it)
        with web_client(rt) as stay:
            assert login(stay, staff_no("physician", "stay")).status_code in (302, 303)
            viewer = stay.get(f"/records/{C}")
            assert viewer.status_code == 200 and "本病案尚未数字化" in viewer.text
            assert f'href="/reading/paper?admission_no={C}"' in viewer.text
        # bad input: said plainly, nothing recorded
        r = post_form(doc, "/reading/paper", {"admission_no": C, "reason": "  "})
        assert r.status_code == 400 and "请填写用途" in r.text
        r = post_form(doc, "/reading/paper", {"admission_no": C, "reason": "长" * 501})
        assert r.status_code == 400 and "用途过长" in r.text
        assert _count(rt) == 0
        r = post_form(doc, "/reading/paper", {"admission_no": C, "reason": "复诊参考"})
        assert r.status_code in (302, 303)
        assert "已向病案室申请调阅" in doc.get(r.headers["location"]).text
        r = post_form(doc, "/reading/paper", {"admission_no": C, "reason": "再来一次"})
        assert r.status_code == 400 and "病案室正在处理" in r.text
        assert _count(rt) == 1
        assert "新的纸质病案调阅申请" in _notes(rt, ROOM)

        # the record room: its queue (in its menu), a refusal needs a reason, the applicant
        # is told
        assert 'href="/reading/paper/queue"' in _menu(room.get("/").text)
        assert doc.get("/reading/paper/queue").status_code == 403
        queue = room.get("/reading/paper/queue").text
        assert "复诊参考" in queue and C in queue
        with rt.sessions() as s:
            rid = s.scalar(select(PaperRequest.id))
        r = post_form(room, f"/reading/paper/{rid}/decide", {"outcome": "refused"})
        assert r.status_code == 400 and "请填写不能提供的原因" in r.text
        r = post_form(room, f"/reading/paper/{rid}/decide",
                      {"outcome": "refused", "note": "病案外借至医保局，下周归还"})
        assert r.status_code in (302, 303)
        assert "已通知申请人" in room.get(r.headers["location"]).text
        r = post_form(room, f"/reading/paper/{rid}/decide", {"outcome": "sent"})
        assert r.status_code == 400 and "已处理" in r.text
        assert _notes(rt, DOC)[-1] == "纸质病案调阅申请未能满足"
        mine = doc.get("/reading/paper").text
        assert "不能提供" in mine and "病案外借至医保局" in mine
    assert [e.action for e in events(rt) if e.action.startswith("reading.paper")] == [
        "reading.paper.request", "reading.paper.decide"]


def test_with_the_warehouse_the_record_room_has_one_queue(world):
    """With the warehouse enabled its borrowing queue is the one the record room works
    from: reading's menu entry is gone, its links lead to the warehouse's form, nothing is
    stored in reading's queue, and a request left open there from before can still be
    answered on its page."""
    from bingan.core import records
    from bingan.core.models import Role
    from bingan_reading import paper

    rt = world.rt
    if rt.pm.get_plugin("warehouse") is None:
        pytest.skip("the warehouse plugin is not enabled here")
    with rt.sessions() as s, s.begin():  # a request made before the warehouse came
        old = paper.request_paper(s, rt, s.scalar(select(Staff).where(Staff.staff_no == DOC)),
                                  records.get_admission(s, C), "复诊参考")
        old_id = old.id
        barcode = records.get_admission(s, E1).barcode
    with web_client(rt) as doc, web_client(rt) as room:
        assert login(doc, DOC).status_code in (302, 303)
        assert login(room, ROOM).status_code in (302, 303)
        menu = _menu(room.get("/").text)
        assert 'href="/reading/paper/queue"' not in menu and 'href="/warehouse/loans"' in menu
        r = doc.get(f"/reading/paper?admission_no={E1}", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/warehouse/loans/request?barcode={barcode}"
        r = post_form(doc, "/reading/paper", {"admission_no": E1, "reason": "复诊参考"})
        assert r.status_code == 409 and "病案库房统一办理" in r.text
        assert _count(rt) == 1
        # the request from before is finished where it was made
        queue = room.get("/reading/paper/queue").text
        assert 'id="paper-elsewhere"' in queue and "复诊参考" in queue
        r = post_form(room, f"/reading/paper/{old_id}/decide", {"outcome": "sent"})
        assert r.status_code in (302, 303)
    with rt.sessions() as s, s.begin():  # a role without the warehouse's request permission
        role = s.scalar(select(Role).where(Role.name == "physician"))
        role.permissions = sorted(set(role.permissions or []) - {"warehouse.request"})
    with web_client(rt) as doc:
        assert login(doc, DOC).status_code in (302, 303)
        r = doc.get(f"/reading/paper?admission_no={E1}", follow_redirects=False)
        assert r.status_code == 409 and "病案库房统一办理" in r.text
        assert _count(rt) == 1
