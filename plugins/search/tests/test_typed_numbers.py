"""Numbers as clerks type them find the record (issue 12): ``zy2024020025``, an MRN without its
leading zeros, full-width digits, in the simple, combined and batch searches."""

from __future__ import annotations

import datetime as dt

from bingan.hooks.types import AdmissionIn, PatientIn


def test_typed_numbers_find_the_record(rt, cli_actor):
    from bingan.core import records
    from bingan_search import batch as batch_mod
    from bingan_search import service
    from bingan_search.query import Cond

    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00200025", name="陈长林"), admission_no="ZY2024020025",
            visit_no=1, admitted_at=dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)))

    def simple(**kw) -> list[str]:
        res = service.simple(rt, service.SimpleCriteria(**kw), service.Paging(), actor=cli_actor,
                             via="test")
        return [h.admission_no for h in res.hits]

    assert simple(admission_no="zy2024020025") == ["ZY2024020025"]
    assert simple(admission_no=" ZY 2024020025 ") == ["ZY2024020025"]
    assert simple(mrn="200025") == ["ZY2024020025"]
    assert simple(mrn="００２００02５") == ["ZY2024020025"]
    assert simple(mrn="00200025") == ["ZY2024020025"]
    assert simple(mrn="2000250") == []
    res = service.combined(rt, Cond("mrn", "in", "200025, 999"), service.Paging(),
                           actor=cli_actor, via="test")
    assert [h.admission_no for h in res.hits] == ["ZY2024020025"]
    res = service.batch(rt, batch_mod.BatchInput(["zy2024020025"], []), "auto", service.Paging(),
                        actor=cli_actor, via="test")
    assert res.total == 1 and not res.not_found


def test_a_query_summary_names_departments():
    from bingan_search.query import Cond, Group, describe

    node = Group("and", [Cond("discharge_department", "in", "1005, 1001"),
                         Cond("mrn", "eq", "200025")])
    text = describe(node, {"1005": "普通外科", "1001": "心血管内科"})
    assert "普通外科、心血管内科" in text and "1005" not in text
    assert "1005" in describe(node)  # without names (the audit log) the codes stay
