"""The deathcase pages: the worklist, a record's page, uploading a charge list, exporting a
batch, downloading it (the export decision again), registering the upload; bad input is a
clear error with nothing written; a physician is refused."""

from __future__ import annotations

import io
import re
import zipfile

from sqlalchemy import func, select

from bingan_deathcase.models import DeathcaseBatch, DeathcaseCase
from case_world import PASSWORD
from test_deathcase import AAMA, DEATH, GOOD, sheet
from webutil import csrf_token, login, web_client


def test_worklist_case_export_download_upload(world):
    rt = world.rt
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/deathcase", params={"start": "2026-11-01", "end": "2026-11-30"})
        assert r.status_code == 200
        assert DEATH in r.text and AAMA in r.text and "ZY2026110003" not in r.text
        assert c.get("/deathcase", params={"start": "2026-11-30", "end": "2026-11-01"}
                     ).status_code == 400
        page = c.get(f"/deathcase/cases/{DEATH}")
        assert page.status_code == 200 and "12330100470000000X_00900001_1_20261110.pdf" in page.text
        tok = csrf_token(c)
        bad = c.post(f"/deathcase/cases/{DEATH}/charges", data={"_csrf_token": tok},
                     files={"file": ("x.xlsx", sheet([["名称"], ["床位费"]]))})
        assert bad.status_code == 400 and "表头" in bad.text
        ok = c.post(f"/deathcase/cases/{DEATH}/charges", data={"_csrf_token": tok},
                    files={"file": ("清单.xlsx", sheet(GOOD))}, follow_redirects=False)
        assert ok.status_code == 303
        assert "434.50" in c.get(f"/deathcase/cases/{DEATH}").text
        lab = c.get(f"/deathcase/cases/{DEATH}/labels.pdf")
        assert lab.status_code == 200 and lab.content.startswith(b"%PDF")
        r = c.post("/deathcase/export", data={"_csrf_token": tok, "adm": [DEATH, AAMA]},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        no = r.headers["location"].rsplit("/", 1)[1]
        b = c.get(f"/deathcase/batches/{no}")
        assert b.status_code == 200 and "登记为已上传" in b.text
        z = c.get(f"/deathcase/batches/{no}/zip")
        assert z.status_code == 200 and "filename*=UTF-8''" in z.headers["content-disposition"]
        assert len([n for n in zipfile.ZipFile(io.BytesIO(z.content)).namelist()
                    if n.endswith(".pdf")]) == 2
        r = c.post(f"/deathcase/batches/{no}/uploaded", data={"_csrf_token": tok,
                                                              "note": "回执 A-1"},
                   follow_redirects=False)
        assert r.status_code == 303
        assert "回执 A-1" in c.get(f"/deathcase/batches/{no}").text
        lst = c.get("/deathcase", params={"start": "2026-11-01", "end": "2026-11-30",
                                          "stage": "uploaded"})
        assert len(re.findall(r'name="adm" value="', lst.text)) == 2
    with web_client(rt) as c:
        login(c, "PHY1", PASSWORD)
        assert c.get("/deathcase").status_code == 403
        assert c.get(f"/deathcase/batches/{no}/zip").status_code == 403
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeathcaseBatch)) == 1
        assert s.scalar(select(func.count()).select_from(DeathcaseCase)) == 1


def test_export_refused_by_the_decision_writes_nothing(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        from bingan.core.models import Role

        role = s.scalar(select(Role).where(Role.name == "physician"))
        role.permissions = sorted(set(role.permissions or []) | {"deathcase.manage"})
    with web_client(rt) as c:
        login(c, "PHY1", PASSWORD)
        r = c.post("/deathcase/export", data={"_csrf_token": csrf_token(c), "adm": [DEATH]})
        assert r.status_code == 403 and "无权导出" in r.text
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeathcaseBatch)) == 0
        from bingan.core.models import AuditEvent

        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "access.export", AuditEvent.outcome == "deny")) >= 1
