"""The permission matrix over HTTP: every route that shows a record x every role x every
relation to the record. A reader either gets the record (200) or a 403; nothing else, and no
unexpected allow. Each request leaves one audit event with the decision, IP and computer."""

from __future__ import annotations

from sqlalchemy import select

from reading_world import (
    ADMIN_SECRET, DUTY, E1, E2, RELATIONS, ROLES, expected_view, staff_no,
)
from webutil import events, login, login_admin, web_client
from bingan.core.models import AuditEvent


def _sign_in(c, role: str, no: str) -> None:
    c.cookies.clear()
    if role == "admin":
        login_admin(c, no, ADMIN_SECRET)
    else:
        r = login(c, no)
        assert r.status_code in (302, 303), r.text


def _routes(world, adm_no: str) -> dict[str, str]:
    pid = world.page_ids[adm_no][0]
    return {
        "record page": f"/records/{adm_no}",
        "page image": f"/records/{adm_no}/pages/{pid}.jpg?w=320",
        "pages API": f"/api/reading/records/{adm_no}/pages",
        "core admission API": f"/api/admissions/{adm_no}",
    }


def test_http_matrix_routes_roles_relations(world):
    rt = world.rt
    got, want, odd = {}, {}, []
    with web_client(rt, peer="10.20.30.40") as c:
        for role in ROLES:
            for rel in RELATIONS:
                no = staff_no(role, rel)
                _sign_in(c, role, no)
                for adm_no in (E1, E2):
                    for route, url in _routes(world, adm_no).items():
                        r = c.get(url)
                        key = (role, rel, adm_no, route)
                        got[key] = r.status_code == 200
                        want[key] = expected_view(role, rel, adm_no)
                        if r.status_code not in (200, 403):
                            odd.append((key, r.status_code, r.text[:200]))
                        if route == "page image" and r.status_code == 200:
                            assert r.headers["content-type"] == "image/jpeg"
                            assert "no-store" in r.headers["cache-control"]
                        if route == "record page" and r.status_code == 403:
                            if role in DUTY:  # 三员分立: no application offered
                                assert "不能提交查阅申请" in r.text
                                assert "/reading/apply" not in r.text
                            else:
                                assert "申请查阅" in r.text
                                assert f"/reading/apply?admission_no={adm_no}" in r.text
    assert not odd, odd
    unexpected = sorted(k for k in got if got[k] and not want[k])
    missing = sorted(k for k in got if want[k] and not got[k])
    assert not unexpected, f"unexpected allows: {unexpected}"
    assert not missing, f"missing allows: {missing}"
    assert len(got) == len(ROLES) * len(RELATIONS) * 2 * 4


def test_views_and_denials_are_audited_with_ip_and_computer(world):
    rt = world.rt
    pid = world.page_ids[E1][1]
    with web_client(rt, peer="127.0.0.1") as c:
        _sign_in(c, "physician", staff_no("physician", "signer"))
        # the proxy names the computer in its own header (core proxy_computer_header)
        rt.config.core.proxy_computer_header = "X-Client-Computer"
        hdr = {"x-forwarded-for": "10.9.8.7", "x-client-computer": "WS-CARD-07",
               "x-bingan-computer": "FAKE-NAME"}
        assert c.get(f"/records/{E1}", headers=hdr).status_code == 200
        assert c.get(f"/records/{E1}/pages/{pid}.jpg", headers=hdr).status_code == 200
        assert c.get(f"/records/{E2}", headers=hdr).status_code == 403
        assert c.get(f"/records/{E2}/pages/{world.page_ids[E2][0]}.jpg",
                     headers=hdr).status_code == 403
        assert c.get("/records/ZY209912000001", headers=hdr).status_code == 404
    rows = [e for e in events(rt) if e.action in ("record.view", "record.page_view")]
    seen = [(e.action, e.admission_no, e.outcome, e.client_ip, e.computer_name) for e in rows]
    assert seen == [
        ("record.view", E1, "ok", "10.9.8.7", "WS-CARD-07"),
        ("record.page_view", E1, "ok", "10.9.8.7", "WS-CARD-07"),
        ("record.view", E2, "denied", "10.9.8.7", "WS-CARD-07"),
        ("record.page_view", E2, "denied", "10.9.8.7", "WS-CARD-07"),
        ("record.view", "ZY209912000001", "failed", "10.9.8.7", "WS-CARD-07"),
    ]
    assert all(e.staff_no == staff_no("physician", "signer") for e in rows)
    assert rows[0].mrn == "00700001" and "reading:reading:signer:allow" in rows[0].detail
    assert f'"page": {pid}' in rows[1].detail
    # one event per page view: the decision rides in it, no separate access.view event
    with rt.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "access.view")) is None
    # the audit pages name them in Chinese (audit_action_labels)
    with web_client(rt) as c:
        _sign_in(c, "auditor", staff_no("auditor", "none"))
        text = c.get("/audit").text
        assert "查看病案页面" in text and "WS-CARD-07" in text


def test_unknown_pages_and_bad_widths(world):
    rt = world.rt
    other = world.page_ids[E2][0]
    with web_client(rt) as c:
        _sign_in(c, "records", staff_no("records", "none"))
        assert c.get(f"/records/{E1}/pages/{other}.jpg").status_code == 404  # another record's
        assert c.get(f"/records/{E1}/pages/999999.jpg").status_code == 404
        assert c.get(f"/records/{E1}/pages/abc.png").status_code == 404
        assert c.get(f"/records/{E1}/pages/{world.page_ids[E1][0]}.jpg?w=3").status_code == 400
        assert c.get(f"/records/{E1}/pages/{world.page_ids[E1][0]}.jpg?w=x").status_code == 400
        r = c.get(f"/api/reading/records/{E1}/pages")
        assert r.status_code == 200
        body = r.json()
        assert [p["id"] for p in body["pages"]] == world.page_ids[E1]
        assert body["pages"][0]["url"].endswith(f"/pages/{world.page_ids[E1][0]}.jpg")
        assert c.get("/api/reading/records/ZY209912000001/pages").status_code == 404
    with web_client(rt) as c:  # signed out: no image at all
        r = c.get(f"/records/{E1}/pages/{world.page_ids[E1][0]}.jpg", follow_redirects=False)
        assert r.status_code in (302, 303, 401) and not r.content.startswith(b"\xff\xd8")
