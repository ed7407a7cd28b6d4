"""The counter over HTTP: search, the form with the objective record preselected, register
with documents (multipart), the repeat-copy warning, a refusal naming the rule."""

from __future__ import annotations

import re

from sqlalchemy import select

from bingan.core.models import AuditEvent

from bingan_copying import service
from copy_world import A1, A2, MRN, PASSWORD, id_card_jpeg
from webutil import csrf_token, login, web_client
from bingan_copying.settings import CopyingSettings

OBJECTIVE_A1 = {"出院记录", "入院记录", "医嘱单", "检验报告", "体温单"}


def _form(c, adms):
    r = c.get("/copying/new", params=[("adm", a) for a in adms])
    assert r.status_code == 200, r.text
    return r.text


def _checked_pages(html: str) -> set[int]:
    return {int(m) for m in re.findall(
        r'<input type="checkbox" name="page" value="(\d+)" data-type="[^"]*" checked>', html)}


def _post(c, adms, pages, applicant_type="patient", docs=("patient_id",), **extra):
    data = {"_csrf_token": csrf_token(c), "applicant_type": applicant_type,
            "applicant_name": "王小明", "purpose": "insurance", "copies": "2", "consent": "1",
            "adm": list(adms), "page": [str(p) for p in pages], **extra}
    files = [(f"doc_{k}", (f"{k}.jpg", id_card_jpeg(k), "image/jpeg")) for k in docs]
    for k in docs:
        data[f"src_{k}"] = "upload"
    return c.post("/copying/requests", data=data, files=files, follow_redirects=False)


def test_counter_flow_and_repeat_warning(world):
    rt = world.rt
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/copying/new", params={"q": MRN})
        assert r.status_code == 200 and A1 in r.text and A2 in r.text
        # as clerks type them: no leading zeros, a lower-case admission number, the name
        for typed in (MRN.lstrip("0"), A2.lower(), "王小明"):
            r = c.get("/copying/new", params={"q": typed})
            assert A1 in r.text and A2 in r.text, typed
        html = _form(c, [A1])
        assert _checked_pages(html) == set(world.page_ids(A1, OBJECTIVE_A1))
        assert "此前已被复印" not in html
        pages = sorted(_checked_pages(html))
        r = _post(c, [A1], pages)
        assert r.status_code == 303, r.text
        no = r.headers["location"].rsplit("/", 1)[1]
        r = c.get(f"/copying/requests/{no}")
        assert r.status_code == 200 and "5.00 元" in r.text  # 5 pages x 2 copies x 0.50
        # the second visit warns: who, when, for what, which pages
        html = _form(c, [A1, A2])
        warn = re.search(r'<section class="alert warn cp-repeat".*?</section>', html, re.S)
        assert warn, "no repeat-copy warning"
        w = warn.group(0)
        assert no in w and "王小明" in w and "周病案（REC1）" in w and "商业保险理赔" in w
        assert "体温单 1 页" in w and "共 5 页" in w
    with rt.sessions() as s:
        earlier = service.earlier_copies(s, rt.settings(CopyingSettings),
                                         [a for a in [_adm_id(s, A1)]])
        assert [e.request_no for e in earlier] == [no]
        assert _adm_id(s, A2) and not service.earlier_copies(
            s, rt.settings(CopyingSettings), [_adm_id(s, A2)])


def _adm_id(s, no):
    from bingan.core.models import Admission

    return s.scalar(select(Admission.id).where(Admission.admission_no == no))


def test_missing_document_over_http_names_the_rule(world):
    rt = world.rt
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        r = _post(c, [A1], world.page_ids(A1)[:2], applicant_type="heir",
                  docs=("death_certificate", "heir_id"))
        assert r.status_code == 400
        assert "死亡患者与法定继承人关系的法定证明材料" in r.text and "第十八条第（三）项" in r.text
    with rt.sessions() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.refused")).one()
        assert ev.staff_no == "REC1" and ev.outcome == "denied"


def test_physician_has_no_counter(world):
    with web_client(world.rt) as c:
        login(c, "PHY1", PASSWORD)
        assert c.get("/copying/new").status_code == 403
        r = _post(c, [A1], world.page_ids(A1)[:1])
        assert r.status_code == 403
