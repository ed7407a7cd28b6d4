"""From the 403 page, one application for all of a patient's records the reader cannot see
(chosen by core's access decision, never listed to the reader); the reading plugin's home
page panel (own applications and grants, the approver's queue)."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from bingan.core.grants import create_grant
from bingan.core.models import Admission, utcnow
from bingan_reading.models import ReadingApplication
from homeutil import home_panels
from reading_world import ADMIN_SECRET, C, E1, E2, E3, MRN1, staff_no
from webutil import csrf_token, login, login_admin, post_form, web_client

READER = staff_no("physician", "none")


def _grant_e3(rt) -> None:
    with rt.sessions() as s, s.begin():
        create_grant(s, rt, staff_no=READER, actions=["view"], admission_no=E3,
                     deadline=utcnow() + dt.timedelta(days=2), reason="会诊查阅")


def test_apply_for_all_of_a_patients_records_from_the_403(world):
    rt = world.rt
    _grant_e3(rt)  # the reader may already read one of the patient's three stays
    with web_client(rt) as doc, web_client(rt) as appr:
        assert login(doc, READER).status_code in (302, 303)
        r = doc.get(f"/records/{E1}")
        assert r.status_code == 403
        link = re.search(r'id="rd-apply-patient" href="([^"]+)"', r.text).group(1)
        assert link == f"/reading/apply?patient_of={E1}"
        form = doc.get(link)
        assert form.status_code == 200 and 'id="rd-patient-scope"' in form.text
        # nothing of the patient: not the name, the MRN, nor which other stays there are
        for secret in ("张三", MRN1, E3, C):
            assert secret not in form.text, secret
        r = post_form(doc, "/reading/apply", {"patient_of": E1, "reason": "会诊需要查阅既往病史",
                                              "days": "5"})
        assert r.status_code in (302, 303), r.text
        app_id = int(r.headers["location"].rsplit("/", 1)[1])
        with rt.sessions() as s:
            app = s.get(ReadingApplication, app_id)
            got = {s.get(Admission, it.admission_id).admission_no for it in app.items}
        assert got == {E1, C}  # E3 is readable already: not asked for again
        assert "已提交查阅申请" in doc.get(f"/records/{C}").text
        # the approver decides once for both; then the reader reads both
        assert login(appr, "APPR").status_code in (302, 303)
        ok = appr.post(f"/reading/applications/{app_id}/approve",
                       data={"days": "2", "_csrf_token": csrf_token(appr)})
        assert ok.status_code in (200, 302, 303), ok.text
        for no in (E1, C, E3):
            assert doc.get(f"/records/{no}").status_code == 200, no
        assert doc.get(f"/records/{E2}").status_code == 403  # another patient: untouched
        # nothing left to ask for: a clear refusal, nothing written
        with rt.sessions() as s:
            before = len(s.scalars(select(ReadingApplication.id)).all())
        r = post_form(doc, "/reading/apply", {"patient_of": E1, "reason": "会诊需要查阅既往病史",
                                              "days": "5"})
        assert r.status_code == 400 and "都已可以查阅" in r.text
        r = post_form(doc, "/reading/apply", {"patient_of": "ZY209901999999",
                                              "reason": "会诊需要查阅既往病史", "days": "5"})
        assert r.status_code == 400 and "不存在" in r.text
        with rt.sessions() as s:
            assert len(s.scalars(select(ReadingApplication.id)).all()) == before


def test_home_panel(world):
    rt = world.rt
    _grant_e3(rt)
    with web_client(rt) as c:
        assert login(c, READER).status_code in (302, 303)
        assert post_form(c, "/reading/apply", {"admission_nos": E2, "reason": "会诊需要查阅病史",
                                               "days": "5"}).status_code in (302, 303)
        mine = home_panels(c.get("/").text)["reading-mine"]
        assert mine == {"我的申请待审批": "1", "有效的查阅授权": "1", "3 天内到期的授权": "1"}
        c.cookies.clear()
        assert login(c, "APPR").status_code in (302, 303)
        panel = home_panels(c.get("/").text)["reading-mine"]
        assert panel["待我审批的申请"] == "1" and panel["我的申请待审批"] == "0"
        c.cookies.clear()
        assert login(c, staff_no("nurse", "none")).status_code in (302, 303)
        assert home_panels(c.get("/").text)["reading-mine"]["有效的查阅授权"] == "0"
        c.cookies.clear()
        # the administrator reads no records (三员分立): no reading panel to show him
        login_admin(c, staff_no("admin", "none"), ADMIN_SECRET)
        assert "reading-mine" not in home_panels(c.get("/").text)
