"""Remote copy management: a ward registers a request for its branch, the central record room
approves (or rejects) it from the queue, and only then the ward prints, through the same
access decision (the approval is a time-limited core grant of ``print`` on that record)."""

from __future__ import annotations

import re

from sqlalchemy import select

from bingan.core.models import AuditEvent, Grant, Notification
from bingan.core.staff import get_staff

from bingan_copying import service
from bingan_copying.models import PrintJob
from copy_world import A1, A2, PASSWORD, id_card_jpeg
from cups_queue import ensure_queue, job_pdf
from webutil import csrf_token, login, web_client
from bingan_copying.settings import CopyingSettings


def _register_remote(c, world, adm=A1, site="东院区"):
    html = c.get("/copying/remote/new", params={"adm": adm}).text
    assert "中心病案室（本窗口打印）" not in html  # a ward cannot register for the centre
    assert site in html
    pages = world.page_ids(adm)[:2]
    r = c.post("/copying/requests", data={
        "_csrf_token": csrf_token(c), "applicant_type": "patient", "applicant_name": "王小明",
        "purpose": "continuing_care", "copies": "1", "consent": "1", "adm": [adm],
        "page": [str(p) for p in pages], "site": site, "src_patient_id": "webcam"},
        files=[("doc_patient_id", ("cam.jpg", id_card_jpeg(), "image/jpeg"))],
        follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def _print(c, no, printer):
    return c.post(f"/copying/requests/{no}/print",
                  data={"_csrf_token": csrf_token(c), "printer": printer},
                  follow_redirects=False)


def test_remote_request_approval_print(world):
    queue = ensure_queue()
    rt = world.rt
    with web_client(rt) as ward, web_client(rt) as central:
        assert login(ward, "NUR1", PASSWORD).status_code in (302, 303)
        assert login(central, "REC1", PASSWORD).status_code in (302, 303)
        no = _register_remote(ward, world)
        with rt.sessions() as s:
            req = service.get_request(s, no)
            assert (req.status, req.site, req.operator_no) == ("pending", "东院区", "NUR1")
            rec1 = get_staff(s, "REC1")
            assert s.scalars(select(Notification).where(
                Notification.staff_id == rec1.id)).first() is not None
        # not yet: printing before approval is refused and audited
        r = _print(ward, no, queue)
        assert r.status_code == 303 and "error=" in r.headers["location"]
        # the queue: the centre sees it pending, the ward its own
        q = central.get("/copying/queue").text
        assert no in q and "待审批" in q and "东院区" in q
        assert no in ward.get("/copying/queue").text
        # the ward cannot approve its own request
        r = ward.post(f"/copying/requests/{no}/decide",
                      data={"_csrf_token": csrf_token(ward), "verdict": "approve"},
                      follow_redirects=False)
        assert r.status_code == 403
        r = central.post(f"/copying/requests/{no}/decide",
                         data={"_csrf_token": csrf_token(central), "verdict": "approve",
                               "note": "同意"}, follow_redirects=False)
        assert r.status_code == 303 and "msg=" in r.headers["location"]
        with rt.sessions() as s:
            req = service.get_request(s, no)
            assert (req.status, req.decided_by) == ("approved", "REC1")
            nur = get_staff(s, "NUR1")
            g = s.scalars(select(Grant).where(Grant.staff_id == nur.id)).one()
            assert g.actions == ["print"] and g.source == "copying"
        assert "已批准" in central.get("/copying/queue", params={"status": "approved"}).text
        r = _print(ward, no, queue)
        assert r.status_code == 303 and "msg=" in r.headers["location"], r.headers["location"]
    with rt.sessions() as s:
        job = s.scalars(select(PrintJob)).one()
        assert job.ok and job.operator_no == "NUR1" and job.printer == queue
        assert service.get_request(s, no).status == "printed"
        outcomes = [e.outcome for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "copying.print").order_by(AuditEvent.seq))]
        assert outcomes == ["denied", "ok"]
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.approve")).one()
        cups_job = job.cups_job
    assert job_pdf(cups_job).stat().st_size > 0


def test_rejected_remote_request_never_prints(world):
    rt = world.rt
    with web_client(rt) as ward, web_client(rt) as central:
        login(ward, "NUR1", PASSWORD)
        login(central, "REC1", PASSWORD)
        no = _register_remote(ward, world, adm=A2, site="西院区")
        r = central.post(f"/copying/requests/{no}/decide",
                         data={"_csrf_token": csrf_token(central), "verdict": "reject"},
                         follow_redirects=False)
        assert "error=" in r.headers["location"]  # a rejection needs a reason
        r = central.post(f"/copying/requests/{no}/decide",
                         data={"_csrf_token": csrf_token(central), "verdict": "reject",
                               "note": "材料不清晰，请重新拍摄"}, follow_redirects=False)
        assert "msg=" in r.headers["location"]
        r = ward.get(f"/copying/requests/{no}/copy.pdf")
        assert r.status_code == 403 and "驳回" in r.text
        page = ward.get(f"/copying/requests/{no}").text
        assert "已驳回" in page and "材料不清晰" in page
        assert not re.search(r'id="cp-print"', page)
    with rt.sessions() as s:
        assert not s.scalars(select(PrintJob)).all()
        assert not s.scalars(select(Grant)).all()


def test_ward_without_site_is_refused(world):
    with web_client(world.rt) as ward:
        login(ward, "NUR1", PASSWORD)
        r = ward.post("/copying/requests", data={
            "_csrf_token": csrf_token(ward), "applicant_type": "patient",
            "applicant_name": "王小明", "purpose": "insurance", "copies": "1", "consent": "1",
            "adm": [A1], "page": [str(world.page_ids(A1)[0])]},
            files=[("doc_patient_id", ("c.jpg", id_card_jpeg(), "image/jpeg"))],
            follow_redirects=False)
        assert r.status_code == 400 and "院区" in r.text


def test_printers_offered_by_site(world):
    from bingan_copying import printing
    from bingan_copying.settings import Printer

    st = world.rt.settings(CopyingSettings)
    st.printers = [Printer(name="central-laser", label="病案室激光打印机"),
                   Printer(name="east-ward", label="东院区护士站", site="东院区")]
    assert printing.printers(world.rt) == [("central-laser", "病案室激光打印机")]
    assert printing.printers(world.rt, "东院区") == [("east-ward", "东院区护士站")]
    assert printing.printers(world.rt, "西院区") == []


def _current(html: str) -> list[str]:
    """Menu items marked as the current page."""
    return re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', html)


def test_counter_and_remote_pages_have_one_menu_item_each(world):
    """复印登记 and 异地复印申请 are two pages: someone who may use both (the record room
    with copying.remote too) sees each highlighted alone, and the remote page offers no
    printing at the centre; a ward that follows a 复印登记 link lands on its own page."""
    rt = world.rt
    from bingan.core.models import Role

    with rt.sessions() as s, s.begin():
        rec = s.scalar(select(Role).where(Role.name == "records"))
        rec.permissions = sorted(set(rec.permissions or []) | {"copying.remote"})
    with web_client(rt) as both, web_client(rt) as ward:
        assert login(both, "REC1", PASSWORD).status_code in (302, 303)
        counter = both.get("/copying/new", params={"adm": A1})
        assert counter.status_code == 200 and _current(counter.text) == ["/copying/new"]
        assert "中心病案室（本窗口打印）" in counter.text and 'name="mode"' not in counter.text
        remote = both.get("/copying/remote/new", params={"adm": A1})
        assert remote.status_code == 200 and _current(remote.text) == ["/copying/remote/new"]
        assert "<h1>异地复印申请</h1>" in remote.text
        assert "中心病案室（本窗口打印）" not in remote.text
        assert 'action="/copying/remote/new"' in remote.text
        assert '<input type="hidden" name="mode" value="remote">' in remote.text
        # the remote form without a site is refused (not registered at the counter)
        r = both.post("/copying/requests", data={
            "_csrf_token": csrf_token(both), "mode": "remote", "applicant_type": "patient",
            "applicant_name": "王小明", "purpose": "continuing_care", "copies": "1",
            "consent": "1", "adm": [A1], "page": [str(world.page_ids(A1)[0])]},
            files=[("doc_patient_id", ("cam.jpg", id_card_jpeg(), "image/jpeg"))],
            follow_redirects=False)
        assert r.status_code == 400 and _current(r.text) == ["/copying/remote/new"]
        assert login(ward, "NUR1", PASSWORD).status_code in (302, 303)
        assert 'href="/copying/new"' not in ward.get("/").text
        r = ward.get("/copying/new", params={"adm": A1}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/copying/remote/new?adm={A1}"
        assert ward.get("/copying/remote/new").status_code == 200
        assert both.get("/copying/remote/new").status_code == 200
        # the counter page stays the counter's
        with rt.sessions() as s, s.begin():
            rec = s.scalar(select(Role).where(Role.name == "records"))
            rec.permissions = sorted(set(rec.permissions) - {"copying.remote"})
        assert both.get("/copying/remote/new").status_code == 403


def test_home_panels_follow_the_remote_request(world):
    """The ward sees its remote request waiting, then approved and to be printed; the record
    room sees it in its approvals; a physician has no copying panel."""
    from homeutil import home_links, home_panels

    rt = world.rt
    with web_client(rt) as ward, web_client(rt) as central:
        assert login(ward, "NUR1", PASSWORD).status_code in (302, 303)
        assert login(central, "REC1", PASSWORD).status_code in (302, 303)
        no = _register_remote(ward, world)
        mine = home_panels(ward.get("/").text)["copying-work"]
        assert mine == {"我登记的待中心审批": "1", "已批准待打印": "0"}
        r = central.get("/")
        room = home_panels(r.text)["copying-work"]
        assert room["异地申请待审批"] == "1" and room["窗口已登记待打印"] == "0"
        for href in home_links(r.text)["copying-work"]:
            assert central.get(href).status_code == 200, href
        central.post(f"/copying/requests/{no}/decide",
                     data={"_csrf_token": csrf_token(central), "verdict": "approve",
                           "note": "同意"}, follow_redirects=False)
        assert home_panels(ward.get("/").text)["copying-work"]["已批准待打印"] == "1"
        assert home_panels(central.get("/").text)["copying-work"]["异地申请待审批"] == "0"
    with web_client(rt) as doc:
        assert login(doc, "PHY1", PASSWORD).status_code in (302, 303)
        assert "copying-work" not in home_panels(doc.get("/").text)
