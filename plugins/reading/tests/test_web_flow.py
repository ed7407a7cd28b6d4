"""The pages: apply from a denied record, approve through htmx, read, reject with a reason;
administrators' rules, grants and the explain page."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from reading_world import ADMIN_SECRET, E1, E2, MRN2, staff_no
from webutil import csrf_token, events, login, login_admin, post_form, web_client
from bingan.core.models import Grant, Role

from bingan_reading.models import ReadingApplication, ReadingRule

APPLICANT = staff_no("physician", "none")


def _count(rt, model) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def _give(rt, role: str, permission: str) -> None:
    from bingan.core.models import Role

    with rt.sessions() as s, s.begin():
        r = s.scalar(select(Role).where(Role.name == role))
        r.permissions = sorted(set(r.permissions or []) | {permission})


def test_apply_approve_read_over_http(world):
    rt = world.rt
    with web_client(rt) as doc, web_client(rt) as appr:
        assert login(doc, APPLICANT).status_code in (302, 303)
        r = doc.get(f"/records/{E2}")
        assert r.status_code == 403 and "申请查阅" in r.text
        link = re.search(r'href="(/reading/apply\?admission_no=[^"]+)"', r.text).group(1)
        form = doc.get(link)
        assert form.status_code == 200 and E2 in form.text
        # the lookup lists a patient's stays: only for staff who may search the index
        # (issue 9: any account could list a patient's admission history by MRN)
        assert doc.get("/reading/apply/lookup", params={"lookup": MRN2}).status_code == 403
        assert 'id="rd-lookup"' not in form.text
        _give(rt, "physician", "search.use")
        assert 'id="rd-lookup"' in doc.get(link).text
        # the lookup shows the patient's records with the name masked, and is audited
        look = doc.get("/reading/apply/lookup", params={"lookup": MRN2})
        assert E2 in look.text and "李*" in look.text and "李四" not in look.text
        assert events(rt, "reading.lookup")[-1].mrn == MRN2
        before = _count(rt, ReadingApplication)
        bad = post_form(doc, "/reading/apply", {"admission_nos": "ZY209901999999",
                                                "reason": "会诊需要查阅", "days": "5"})
        assert bad.status_code == 400 and "住院号 ZY209901999999 不存在" in bad.text
        assert _count(rt, ReadingApplication) == before
        r = post_form(doc, "/reading/apply", {"admission_nos": E2, "reason": "会诊需要查阅病史",
                                              "days": "5"})
        assert r.status_code in (302, 303), r.text
        app_id = int(r.headers["location"].rsplit("/", 1)[1])
        assert "已提交查阅申请" in doc.get(f"/records/{E2}").text  # 403 page shows it pending
        # the approver sees it and approves through htmx (the row comes back)
        assert login(appr, "APPR").status_code in (302, 303)
        assert "新的病案查阅申请待审批" in appr.get("/notifications").text
        assert "待审批" in appr.get("/").text  # the records role holds reading.approve
        assert f"#{app_id}" in appr.get("/reading/approvals").text
        row = appr.post(f"/reading/applications/{app_id}/approve",
                        data={"days": "2", "_csrf_token": csrf_token(appr)},
                        headers={"hx-request": "true"})
        assert row.status_code == 200 and f'id="rd-app-{app_id}"' in row.text
        assert "已批准" in row.text and "<html" not in row.text
        # the applicant is told and can read now
        assert "病案查阅申请已批准" in doc.get("/notifications").text
        assert doc.get(f"/records/{E2}").status_code == 200
        detail = doc.get(f"/reading/applications/{app_id}")
        assert "已批准" in detail.text and f'href="/records/{E2}"' in detail.text
        assert "有效" in doc.get("/reading/grants").text
        # someone else's application stays private
        other = web_client(rt)
        with other as o:
            assert login(o, staff_no("nurse", "none")).status_code in (302, 303)
            assert o.get(f"/reading/applications/{app_id}").status_code == 403
            r = post_form(o, f"/reading/applications/{app_id}/approve", {"days": "1"})
            assert r.status_code == 403


def test_reject_over_http(world):
    rt = world.rt
    with web_client(rt) as doc, web_client(rt) as appr:
        login(doc, APPLICANT)
        r = post_form(doc, "/reading/apply", {"mrns": MRN2, "reason": "教学查房需要", "days": "3"})
        app_id = int(r.headers["location"].rsplit("/", 1)[1])
        login(appr, "APPR")
        r = post_form(appr, f"/reading/applications/{app_id}/reject", {"note": ""})
        assert r.status_code == 400 and "请填写驳回理由" in r.text
        r = post_form(appr, f"/reading/applications/{app_id}/reject", {"note": "请补充科研立项"})
        assert r.status_code in (302, 303)
        page = doc.get("/reading/applications")
        assert "已驳回" in page.text and "请补充科研立项" in page.text
        assert doc.get(f"/records/{E2}").status_code == 403
        r = post_form(doc, f"/reading/applications/{app_id}/cancel")
        assert r.status_code == 400 and "只能撤回待审批的申请" in r.text


def _roles_have_default_capabilities(rt) -> None:
    with rt.sessions() as s:
        perms = {r.name: set(r.permissions or []) for r in s.scalars(select(Role))}
    assert "reading.rules" in perms["admin"] and "reading.approve" in perms["records"]
    assert "reading.rules" not in perms["physician"] | perms["records"]


def test_rules_grants_and_explain_pages(world):
    rt = world.rt
    _roles_have_default_capabilities(rt)
    admin = staff_no("admin", "none")
    signer = staff_no("physician", "signer")
    live = staff_no("physician", "grant_live")
    with web_client(rt) as doc, web_client(rt) as adm:
        login(doc, signer)
        assert doc.get("/reading/rules").status_code == 403
        assert doc.get("/reading/explain").status_code == 403
        page = doc.get(f"/records/{E1}")
        assert page.status_code == 200
        # the front page summary names the departments, not only their codes
        assert "心血管内科（1001）" in page.text and "城镇职工基本医疗保险" in page.text
        login_admin(adm, admin, ADMIN_SECRET)
        assert adm.get("/reading/rules").status_code == 200
        assert "阅读权限管理" in adm.get("/").text  # menu entry for the permission holder
        bad = post_form(adm, "/reading/rules", {"subject_type": "user", "subject": "NOBODY",
                                                "effect": "deny", "actions": "view"})
        assert bad.status_code == 400 and "工号 NOBODY 不存在" in bad.text
        r = post_form(adm, "/reading/rules", {"subject_type": "user", "subject": signer,
                                              "effect": "deny", "actions": ["view"],
                                              "note": "停职审查"})
        assert r.status_code in (302, 303), r.text
        assert _count(rt, ReadingRule) == 1
        assert doc.get(f"/records/{E1}").status_code == 403  # deny beats the signer rule
        text = adm.get("/reading/explain", params={"staff_no": signer, "admission_no": E1}).text
        assert "首页签名" in text and "停职审查" in text and "结论：拒绝" in text
        assert "reading:" not in text and "管理员规则 #1" in text
        assert adm.get("/reading/explain", params={"staff_no": "NOBODY",
                                                   "admission_no": E1}).status_code == 400
        with rt.sessions() as s:
            rule_id = s.scalar(select(ReadingRule.id))
        r = post_form(adm, f"/reading/rules/{rule_id}/revoke")
        assert r.status_code in (302, 303) and "msg=" in r.headers["location"]
        assert "已撤销规则" in adm.get(r.headers["location"]).text  # said so, in words
        assert doc.get(f"/records/{E1}").status_code == 200
        # revoke a live grant: the holder is told and loses access at once
        with rt.sessions() as s:
            from bingan.core.models import Staff

            gid = s.scalar(select(Grant.id).join(Staff, Grant.staff_id == Staff.id)
                           .where(Staff.staff_no == live))
        # the administrator manages everyone's grants; has none of their own (三员分立)
        assert adm.get("/reading/grants").status_code == 403
        page_text = adm.get("/reading/grants/manage").text
        assert f"#{gid}" in page_text
        assert "撤销理由" in page_text and "data-confirm=" in page_text
        bare = post_form(adm, f"/reading/grants/{gid}/revoke")  # no reason: refused, said why
        assert bare.status_code == 400 and "请填写撤销理由" in bare.text
        r = post_form(adm, f"/reading/grants/{gid}/revoke", {"reason": "会诊已结束"})
        assert r.status_code in (302, 303)
        assert "已撤销" in adm.get(r.headers["location"]).text
        assert post_form(adm, f"/reading/grants/{gid}/revoke",
                         {"reason": "会诊已结束"}).status_code == 404
    with web_client(rt) as c:
        login(c, live)
        assert c.get(f"/records/{E1}").status_code == 403
        notes = c.get("/notifications").text
        assert "查阅授权已被撤销" in notes and "理由：会诊已结束" in notes
