"""Archive pages: overview counts and export jobs, record page, audited PDF download."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import AuditEvent, Role
from webutil import login, make_staff, post_form, web_client

UTC = dt.timezone.utc


def _roles(rt):
    from bingan.core.staff import ensure_builtin_roles

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="archivist", label="归档员",
                   permissions=["records.manage", "archive.download", "archive.export"]))
        s.add(Role(name="reader", label="下载", permissions=["archive.download"]))


def _events(rt, action):
    with rt.sessions() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq)))
        s.expunge_all()
    return rows


def _records(w):
    a = w.admission()
    w.pages(a, [{"page_type": "病案首页"}])
    w.build(a)
    w.pages(a, [{"page_type": "护理记录"}])
    w.build(a)  # two versions
    b = w.admission(mrn="00654321", admission_no="ZY202605000003", name="李四")
    w.pages(b, [{"qc_status": "fail"}])
    w.build(b)
    return a, b


def test_record_page_and_download(world):
    _roles(world.rt)
    a, _ = _records(world)
    make_staff(world.rt, "R01", ["records", "archivist"], name="归档员甲")
    make_staff(world.rt, "P01", ["physician", "reader"], name="医师乙")
    make_staff(world.rt, "N01", ["nurse"], name="护士丙")
    with web_client(world.rt) as c:
        assert login(c, "R01").status_code in (302, 303)
        r = c.get("/archive/records/ZY202605000001")
        assert r.status_code == 200, r.text
        assert "第 2 版" in r.text and "第 1 版" in r.text and "已数字化" in r.text
        r = c.get("/archive/records/ZY202605000001/pdf/1")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        from bingan.core.models import Document

        with world.rt.sessions() as s:
            v1 = s.scalar(select(Document).where(Document.version == 1,
                                                 Document.admission_id == a))
        assert r.content == world.rt.store.get(v1.blob_sha256)
        cd = r.headers["content-disposition"]
        assert cd.isascii() and "filename*=UTF-8''" in cd and "_v1.pdf" in cd
        assert c.get("/archive/records/ZY202605000001/pdf/9").status_code == 404
        assert c.get("/archive/records/ZY999/pdf/1").status_code == 404
        (dl,) = _events(world.rt, "archive.download")
        assert (dl.staff_no, dl.mrn, dl.admission_no) == ("R01", "00123456", "ZY202605000001")
        assert json.loads(dl.detail)["version"] == 1
        assert [e.outcome for e in _events(world.rt, "access.export")] == ["allow"]
        r = c.get("/archive/find", params={"admission_no": "ZY202605000003"},
                  follow_redirects=False)
        assert r.headers["location"] == "/archive/records/ZY202605000003"
        r = c.get("/archive/records/ZY202605000003")
        assert "未通过（质检/返工）" in r.text and "第 1 页质检未通过" in r.text
        r = post_form(c, "/archive/records/ZY202605000003/build")
        assert r.status_code in (302, 303)
        assert [e.action for e in _events(world.rt, "archive.build.request")]
        # the page follows the rebuild by itself (polls every 2 s) until it is done
        page = c.get(r.headers["location"])
        task_id = int(r.headers["location"].rsplit("=", 1)[1])
        status_url = f"/archive/records/ZY202605000003/build/{task_id}"
        assert "已加入生成队列" in page.text and f'hx-get="{status_url}"' in page.text
        assert 'hx-trigger="every 2s"' in c.get(status_url).text
        assert c.get(f"/archive/records/ZY202605000001/build/{task_id}").status_code == 404
        tasks.run_until_idle(world.rt)
        done = c.get(status_url, headers={"HX-Request": "true"})
        assert done.headers["hx-redirect"] == (
            f"/archive/records/ZY202605000003?built={task_id}")
        said = c.get(done.headers["hx-redirect"]).text
        assert 'id="archive-built"' in said and "every 2s" not in said

    with web_client(world.rt) as c:  # may download PDFs, but has no right on this record
        login(c, "P01")
        r = c.get("/archive/records/ZY202605000001")
        assert r.status_code == 403
        r = c.get("/archive/records/ZY202605000001/pdf/1")
        assert r.status_code == 403 and b"%PDF" not in r.content
        assert [e.outcome for e in _events(world.rt, "access.export")] == ["allow", "deny"]
        assert c.get("/archive").status_code == 403  # no records.manage
    with web_client(world.rt) as c:  # no archive.download at all
        login(c, "N01")
        assert c.get("/archive/records/ZY202605000001/pdf/1").status_code == 403
    assert len(_events(world.rt, "archive.download")) == 1


def test_overview_and_export_jobs(world, tmp_path):
    _roles(world.rt)
    _records(world)
    world.admission(mrn="00777777", admission_no="ZY202605000004", name="王五")
    make_staff(world.rt, "R01", ["records", "archivist"])
    make_staff(world.rt, "C01", ["clerk"])
    with web_client(world.rt) as c:
        login(c, "R01")
        r = c.get("/archive")
        assert r.status_code == 200
        html = r.text
        assert 'id="n-digitized">1<' in html and 'id="n-failing">1<' in html
        assert 'id="n-pending">1<' in html and "第 1 页质检未通过" in html
        assert "归档与导出" in html and 'action="/archive/exports"' in html
        r = post_form(c, "/archive/exports", {"layout": "offline", "zip": "1"},
                      headers={"HX-Request": "true"})
        assert r.status_code == 200 and "排队中" in r.text and 'hx-trigger="every 2s"' in r.text
        assert post_form(c, "/archive/exports", {"layout": "nope"}).status_code == 400
        assert post_form(c, "/archive/exports", {"layout": "bag", "from": "2026-02-30"}
                         ).status_code == 400
        # while it runs, the jobs table says how far it is (seen as the zip is being made)
        from bingan_archive import exporting

        seen: list[str] = []
        real_zip = exporting.write_zip

        def looking_zip(*a, **kw):
            seen.append(c.get("/archive/jobs", headers={"HX-Request": "true"}).text)
            return real_zip(*a, **kw)

        exporting.write_zip = looking_zip
        try:
            assert tasks.run_until_idle(world.rt) == 1
        finally:
            exporting.write_zip = real_zip
        assert seen and 'class="job-progress" max="100" value="100"' in seen[0]
        assert "正在打包下载文件" in seen[0] and "every 2s" in seen[0]
        r = c.get("/archive/jobs", headers={"HX-Request": "true"})
        assert "已完成" in r.text and "every 2s" not in r.text
        with world.rt.sessions() as s:
            from bingan.core.models import Task

            t = s.scalar(select(Task).where(Task.kind == "archive.export"))
        assert t.status == "done" and t.result["records"] == 1 and t.result["zip_path"]
        assert f"/archive/exports/{t.id}/download" in r.text
        z = c.get(f"/archive/exports/{t.id}/download")
        assert z.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
        assert any(n.endswith("/index.html") for n in names)
        assert any(n.endswith("00123456_1_20260503.pdf") for n in names)
        assert c.get("/archive/exports/999/download").status_code == 404
        # the catalog and a folder export are downloads too, never a server path on screen
        assert f"/archive/exports/{t.id}/catalog.xlsx" in r.text
        assert t.result["target"] not in r.text
        cat = c.get(f"/archive/exports/{t.id}/catalog.xlsx")
        assert cat.status_code == 200 and cat.content[:2] == b"PK"
        assert "attachment" in cat.headers["content-disposition"]
        post_form(c, "/archive/exports", {"layout": "folders"})
        assert tasks.run_until_idle(world.rt) == 1
        with world.rt.sessions() as s:
            t2 = s.scalars(select(Task).where(Task.kind == "archive.export")
                           .order_by(Task.id.desc())).first()
        assert t2.result["zip_path"]  # a folder export is offered as a zip as well
        z2 = c.get(f"/archive/exports/{t2.id}/download")
        assert z2.status_code == 200 and any(
            n.endswith(".pdf") for n in zipfile.ZipFile(io.BytesIO(z2.content)).namelist())
    ev = _events(world.rt, "archive.export")[0]
    assert ev.staff_no == "R01" and json.loads(ev.detail)["layout"] == "offline"
    assert len(_events(world.rt, "archive.export.request")) == 2
    assert len(_events(world.rt, "archive.export.download")) == 3
    with web_client(world.rt) as c:  # a clerk sees the overview but may not export
        login(c, "C01")
        r = c.get("/archive")
        assert r.status_code == 200 and 'action="/archive/exports"' not in r.text
        assert post_form(c, "/archive/exports", {"layout": "folders"}).status_code == 403


def test_nav_and_permissions_registered(sqlite_world):
    world = sqlite_world
    labels = [i.label for g in world.rt.pm.hook.register_nav(rt=world.rt) for i in (g or [])]
    assert "归档与导出" in labels
    perms = {p.name for g in world.rt.pm.hook.register_permissions() for p in (g or [])}
    assert {"archive.download", "archive.export"} <= perms
