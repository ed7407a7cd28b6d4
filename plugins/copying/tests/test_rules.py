"""Each applicant type's document rule (《医疗机构病历管理规定（2013年版）》 Art. 18, 20): all
documents present registers the request; any one missing refuses it with the rule named and
writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.models import AuditEvent

from bingan_copying import service
from bingan_copying.models import CopyRequest, IdentityDocument
from bingan_copying.settings import DOCUMENT_KINDS
from copy_world import A1, id_card_jpeg
from bingan_copying.settings import CopyingSettings

RULES = {
    "patient": ["patient_id"],
    "agent": ["patient_id", "agent_id", "agent_relation", "power_of_attorney"],
    "heir": ["death_certificate", "heir_id", "heir_relation"],
    "heir_agent": ["death_certificate", "heir_id", "heir_relation", "agent_id", "agent_relation",
                   "power_of_attorney"],
    "institution": ["official_letter", "handler_id", "handler_work_id"],
}
ARTICLE = {"patient": "第十八条第（一）项", "agent": "第十八条第（二）项", "heir": "第十八条第（三）项",
           "heir_agent": "第十八条第（四）项", "institution": "第二十条"}


def request_in(world, applicant_type, kinds, **kw):
    docs = [service.DocumentIn(k, "upload", id_card_jpeg(k)) for k in kinds]
    base = dict(applicant_type=applicant_type, applicant_name="李四", purpose="insurance",
                admission_nos=[A1], page_ids=world.page_ids(A1)[:3], copies=1, consent=True,
                documents=docs, organization="某市公安局" if applicant_type == "institution" else "")
    base.update(kw)
    return service.RequestIn(**base)


def register(world, req_in, staff_no="REC1"):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        return service.register(s, rt, world.staff(staff_no), audit.Actor(staff_no=staff_no),
                                req_in).request_no


def counts(rt):
    with rt.sessions() as s:
        return (s.scalar(select(func.count()).select_from(CopyRequest)),
                s.scalar(select(func.count()).select_from(IdentityDocument)))


def test_default_rules_are_the_regulation(world):
    st = world.rt.settings(CopyingSettings)
    assert {a.code: a.documents for a in st.applicant_types} == RULES
    for code, art in ARTICLE.items():
        assert art in st.applicant(code).rule


@pytest.mark.parametrize("applicant_type", list(RULES))
def test_all_documents_register(world, applicant_type):
    no = register(world, request_in(world, applicant_type, RULES[applicant_type]))
    with world.rt.sessions() as s:
        req = service.get_request(s, no)
        assert req.status == "registered"
        assert sorted(d.kind for d in req.documents) == sorted(RULES[applicant_type])
        assert req.consent_at is not None and "证件影像" in req.consent_text
        assert req.fee_fen == 150  # 3 pages x 0.50 元
    assert [e.detail for e in _events(world.rt, "copying.register")][0]


def _events(rt, action):
    with rt.sessions() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        s.expunge_all()
        return rows


@pytest.mark.parametrize("applicant_type,missing",
                         [(t, k) for t, kinds in RULES.items() for k in kinds])
def test_one_missing_document_refuses_naming_the_rule(world, applicant_type, missing):
    kinds = [k for k in RULES[applicant_type] if k != missing]
    with pytest.raises(service.RequestRefused) as err:
        register(world, request_in(world, applicant_type, kinds))
    assert DOCUMENT_KINDS[missing] in str(err.value)
    assert ARTICLE[applicant_type] in str(err.value)
    assert err.value.missing == [missing]
    assert counts(world.rt) == (0, 0)


def test_refusal_is_audited_and_nothing_written(world):
    rt = world.rt
    req_in = request_in(world, "agent", ["patient_id", "agent_id"])
    err = None
    try:
        register(world, req_in)
    except service.RequestRefused as e:
        err = e
        with rt.sessions() as s, s.begin():
            service.refuse_audit(s, rt, audit.Actor(staff_no="REC1"), req_in, e)
    assert err is not None and "授权委托书" in str(err)
    ev = _events(rt, "copying.refused")
    assert len(ev) == 1 and ev[0].outcome == "denied" and "第十八条" in ev[0].detail
    assert counts(rt) == (0, 0)


@pytest.mark.parametrize("change,needle", [
    ({"consent": False}, "同意"),
    ({"copies": 0}, "份数"),
    ({"purpose": "nope"}, "用途"),
    ({"page_ids": []}, "页面"),
    ({"admission_nos": ["ZY000"]}, "不存在"),
    ({"applicant_name": " "}, "姓名"),
    ({"applicant_type": "friend"}, "申请人类型"),
])
def test_bad_input_refused_nothing_written(world, change, needle):
    req_in = request_in(world, "patient", ["patient_id"])
    for k, v in change.items():
        setattr(req_in, k, v)
    with pytest.raises(service.RequestRefused) as err:
        register(world, req_in)
    assert needle in str(err.value)
    assert counts(world.rt) == (0, 0)


def test_not_an_image_refused_nothing_written(world):
    req_in = request_in(world, "patient", [])
    req_in.documents = [service.DocumentIn("patient_id", "upload", b"%PDF-1.4 not an image")]
    from bingan_copying.identity import IdentityError

    with pytest.raises(IdentityError):
        register(world, req_in)
    assert counts(world.rt) == (0, 0)


def test_institution_needs_its_name(world):
    with pytest.raises(service.RequestRefused) as err:
        register(world, request_in(world, "institution", RULES["institution"], organization=""))
    assert "单位名称" in str(err.value) and "第二十条" in str(err.value)
