"""Identifiers as clerks type them (issue 12): lower case, full-width digits, MRNs without
their leading zeros, in the audit filter and at sign-in. The search plugin's own tests cover
the search boxes."""

from __future__ import annotations

import datetime as dt
import re

from bingan.core import identifiers
from webutil import login, make_staff, record_event, web_client


def test_clean_and_candidates():
    assert identifiers.clean(" zy2024020025 ") == "ZY2024020025"
    assert identifiers.clean("ｚｙ２０２４０２００２５") == "ZY2024020025"  # full-width input
    assert identifiers.clean("D 0001") == "D0001"
    assert identifiers.clean(None) == ""
    assert identifiers.staff_no("d0001") == "D0001"
    assert identifiers.admission_no("zy1") == "ZY1"
    pat = r"^\d{6,10}$"
    got = identifiers.mrn_candidates("200025", pat)
    assert got[0] == "200025" and "00200025" in got and "0000200025" in got
    assert all(re.match(pat, x) for x in got)
    assert identifiers.mrn_candidates("00200025", pat)[0] == "00200025"
    assert "200025" in identifiers.mrn_candidates("00200025", pat)
    assert identifiers.mrn_candidates("", pat) == []
    assert identifiers.mrn_candidates("ab12", pat) == ["AB12"]  # letters: only as typed
    assert len(identifiers.mrn_candidates("7")) == identifiers.MAX_WIDTH


def _seqs(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr class="outcome-[^"]*"><td>(\d+)</td>', html)]


def test_audit_filter_takes_numbers_labels_outcome_and_patient(rt):
    from bingan.core import records
    from bingan.hooks.types import AdmissionIn, PatientIn

    make_staff(rt, "AU1", ["auditor"])
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00200025", name="陈长林"), admission_no="ZY2024020025",
            visit_no=1, admitted_at=dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)))
    view = record_event(rt, "record.view", "D0001", mrn="00200025")
    denied = record_event(rt, "record.view", "D0002", mrn="00200025", outcome="denied")
    login_ev = record_event(rt, "login", "D0001")
    with web_client(rt) as c:
        login(c, "AU1")

        def seqs(**params) -> list[int]:
            r = c.get("/audit", params=params)
            assert r.status_code == 200, r.text
            return [x for x in _seqs(r.text) if x in (view, denied, login_ev)]

        assert seqs(staff_no="d0001") == [login_ev, view]
        assert seqs(mrn="200025") == [denied, view]
        assert seqs(patient="陈长林") == [denied, view]
        assert seqs(action="查阅病案") == [denied, view]
        assert seqs(action="登录") == [login_ev]
        assert seqs(action="record.") == [denied, view]
        assert seqs(outcome="denied") == [denied]
        assert seqs(staff_no="D0001", action="查阅") == [view]
        page = c.get("/audit").text
        assert '<option value="查阅病案">' in page and "如 登录" in page
        assert c.get("/audit", params={"outcome": "bogus"}).status_code == 400
        bad = c.get("/audit", params={"start": "2024-02-01", "end": "2024-01-01"})
        assert bad.status_code == 400 and "结束日期早于开始日期" in bad.text


def test_sign_in_with_a_lower_case_staff_number(rt):
    make_staff(rt, "D0001", ["physician"])
    with web_client(rt) as c:
        r = login(c, "d0001")
        assert r.status_code in (302, 303), r.text
        assert c.get("/").status_code == 200
