"""Core's record page ``/records/{admission_no}``: there whatever plugins are enabled, behind
the core access decision (the same ``view`` decision as the viewer), with the links and panels
plugins contribute (``record_links``, ``record_panels``, ``record_denied``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from support import build_test_runtime
from webutil import login, web_client
from bingan.core import records
from bingan.core.grants import create_grant
from bingan.core.models import AuditEvent, utcnow
from bingan.core.plugins import installed_plugins
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, DiagnosisIn, PatientIn, RecordLink

ADM, MRN, NAME, DIAG = "ZY202603000777", "00770077", "王小明", "急性阑尾炎"
PASSWORD = "Correct-horse-9"
# staff: the record room (role records: views every record), a physician with a live grant, one
# whose grant has expired, one with nothing, a nurse with nothing
STAFF = {"REC1": ["records"], "PHG": ["physician"], "PHX": ["physician"],
         "PHN": ["physician"], "NUR": ["nurse"]}
EXPECT = {"REC1": 200, "PHG": 200, "PHX": 403, "PHN": 403, "NUR": 403}


def _world(rt) -> None:
    now = utcnow()
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1005", "普通外科")
        for no, roles in STAFF.items():
            add_staff(s, no, f"职工{no}", PASSWORD, "1005", roles)
        records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=MRN, name=NAME, sex="M", birth_date=dt.date(1980, 1, 2)),
            admission_no=ADM, visit_no=1, admitted_at=now - dt.timedelta(days=20),
            discharged_at=now - dt.timedelta(days=12), admit_department="1005",
            discharge_department="1005", discharge_way="1",
            diagnoses=(DiagnosisIn("K35.800", DIAG, "main", "1"),)))
        create_grant(s, rt, staff_no="PHG", actions=["view"], admission_no=ADM,
                     deadline=now + dt.timedelta(days=3), reason="会诊查阅")
        create_grant(s, rt, staff_no="PHX", actions=["view"], admission_no=ADM,
                     deadline=now + dt.timedelta(seconds=30), reason="会诊查阅",
                     now=now - dt.timedelta(days=1))
    # the grant of PHX ran out (its deadline moves into the past: the clock cannot)
    from sqlalchemy import update

    from bingan.core.models import Grant, Staff

    with rt.sessions() as s, s.begin():
        sid = s.scalar(select(Staff.id).where(Staff.staff_no == "PHX"))
        s.execute(update(Grant).where(Grant.staff_id == sid)
                  .values(deadline=now - dt.timedelta(minutes=1)))


def _without_reading() -> list[str]:
    """Every installed plugin but the reader and the three that add their own panels and
    links to the page (tracking: the timeline; warehouse: where the paper is, and borrowing
    it; recovery: where the paper record is in recovery), so what is left is core's page with
    archive's and copying's links."""
    return sorted(set(installed_plugins()) - {"reading", "tracking", "warehouse", "recovery"})


@pytest.fixture
def rt_no_reading(db_url, tmp_path):
    runtime = build_test_runtime(tmp_path / "home", db_url, _without_reading())
    _world(runtime)
    yield runtime
    runtime.close()


def _visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def _assert_nothing_of_the_record(html: str) -> None:
    for secret in (NAME, MRN, DIAG, "K35.800", "普通外科（1005）"):
        assert secret not in html, secret


def test_record_page_matrix_without_reading(rt_no_reading):
    """The reading plugin is off: the page is still there (search links never 404), shows the
    summary to whom core's decision allows, and a 403 with nothing of the record otherwise."""
    rt = rt_no_reading
    assert "reading" not in rt.pm.loaded
    with web_client(rt, peer="10.1.2.3") as c:
        for no, want in EXPECT.items():
            c.cookies.clear()
            assert login(c, no).status_code in (302, 303)
            r = c.get(f"/records/{ADM}")
            assert r.status_code == want, (no, r.status_code, r.text[:300])
            if want == 200:
                text = _visible_text(r.text)
                assert NAME in text and MRN in text and DIAG in text and "普通外科（1005）" in text
                assert 'id="rec-no-panels"' in r.text and 'id="rd-viewer"' not in r.text
                assert "查阅依据" in text
            else:
                assert "无权查阅该病案" in r.text and ADM in r.text
                _assert_nothing_of_the_record(r.text)
                # no way to apply is offered: that is the reading plugin's
                assert "/reading/apply" not in r.text
        assert c.get("/records/ZY209912000001").status_code == 404
    rows = [(e.staff_no, e.outcome) for e in _events(rt)]
    assert rows == [("REC1", "ok"), ("PHG", "ok"), ("PHX", "denied"), ("PHN", "denied"),
                    ("NUR", "denied"), ("NUR", "failed")]
    with rt.sessions() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "record.view",
                                               AuditEvent.staff_no == "PHX"))
        assert ev.client_ip == "10.1.2.3" and ev.mrn == MRN and "到期" in ev.detail


def _events(rt) -> list[AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "record.view")
                              .order_by(AuditEvent.seq)))


def test_search_links_lead_to_the_record_page_without_reading(rt_no_reading):
    rt = rt_no_reading
    if "search" not in rt.pm.loaded:
        pytest.skip("search plugin not installed")
    with web_client(rt) as c:
        assert login(c, "REC1").status_code in (302, 303)
        from bingan.core.models import Role

        with rt.sessions() as s, s.begin():  # the record room searches (search.use)
            role = s.scalar(select(Role).where(Role.name == "records"))
            role.permissions = sorted(set(role.permissions or []) | {"search.use"})
        r = c.get("/search/simple", params={"mrn": MRN})
        assert r.status_code == 200, r.text[:300]
        hrefs = set(re.findall(r'href="(/records/[^"]+)"', r.text))
        assert hrefs == {f"/records/{ADM}"}
        for href in hrefs:
            assert c.get(href).status_code == 200


def test_hook_record_links(rt_no_reading):
    """Plugins' links (archive: the archived PDF, copying: a copy request) appear for readers
    whose permissions let them open them, in order; a plugin's own links through the hook."""
    rt = rt_no_reading

    class Extra:
        @staticmethod
        def record_links(record, session, rt):
            assert record.admission.admission_no == ADM and session is not None
            return [RecordLink("借阅纸质病案", f"/x/borrow?adm={record.admission.admission_no}",
                               5)]

    from bingan.hooks import hookimpl

    Extra.record_links = hookimpl(Extra.record_links)
    rt.pm.register(Extra, name="extra-links")
    with web_client(rt) as c:
        assert login(c, "REC1").status_code in (302, 303)
        html = c.get(f"/records/{ADM}").text
        links = re.findall(r'class="button" href="([^"]+)"', html)
        assert links[0] == f"/x/borrow?adm={ADM}"
        if "archive" in rt.pm.loaded:
            assert f"/archive/records/{ADM}" in links
        if "copying" in rt.pm.loaded:
            assert f"/copying/new?adm={ADM}" in links
        c.cookies.clear()
        assert login(c, "PHG").status_code in (302, 303)  # reads by grant, no archive/copy rights
        html = c.get(f"/records/{ADM}").text
        assert re.findall(r'class="button" href="([^"]+)"', html) == [f"/x/borrow?adm={ADM}"]
        c.cookies.clear()
        assert login(c, "PHN").status_code in (302, 303)  # refused: no links at all
        assert "/x/borrow" not in c.get(f"/records/{ADM}").text


@pytest.fixture
def rt_reading(rt):
    _world(rt)
    return rt


def test_hook_record_panels(rt_reading):
    """With reading on, its page viewer is a panel of the record page (its assets and the copy
    protection come with it); ``?page=`` opens it at that page."""
    rt = rt_reading
    with web_client(rt) as c:
        assert login(c, "PHG").status_code in (302, 303)
        r = c.get(f"/records/{ADM}", params={"hl": "阑尾", "page": "999"})
        assert r.status_code == 200
        assert 'id="rd-viewer"' in r.text and 'id="rec-no-panels"' not in r.text
        assert "/static/reading/viewer.js" in r.text and "reading-protected" in r.text
        assert "全文检索“<b>阑尾</b>”命中本病案" in r.text and NAME in r.text
        assert 'data-start="0"' in r.text  # no such page: opens at the first


def test_hook_record_denied(rt_reading):
    """A refused reader gets the reading plugin's way to apply, and nothing of the record."""
    rt = rt_reading
    with web_client(rt) as c:
        assert login(c, "PHN").status_code in (302, 303)
        r = c.get(f"/records/{ADM}")
        assert r.status_code == 403
        assert f'href="/reading/apply?admission_no={ADM}"' in r.text
        _assert_nothing_of_the_record(r.text)
        assert "rd-viewer" not in r.text and "/static/reading/viewer.js" not in r.text
