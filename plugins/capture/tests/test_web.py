"""Capture pages over HTTP: upload API, lookup, queues, rework re-capture, batches, reports,
cover sheets, permissions and auditing."""

from __future__ import annotations

import io
import re

import openpyxl
from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import Page, Role
from bingan.core.pages import current_pages
from bingan_capture.ingest import TASK_KIND
from bingan_capture.models import CaptureRework
from webutil import csrf_token, events, login, make_staff, nav_labels, post_form, web_client

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def run(rt) -> int:
    return tasks.run_until_idle(rt, kinds=[TASK_KIND])


def _clerk(rt, staff_no="R0001", perms=("capture.operate", "capture.plan")):
    make_staff(rt, staff_no, ["clerk"])
    with rt.sessions() as s, s.begin():
        role = s.scalar(select(Role).where(Role.name == "clerk"))
        role.permissions = sorted(set(role.permissions or []) | set(perms))


def _upload(c, data: bytes, name: str, **fields):
    return c.post("/api/capture/upload", files={"file": (name, data, "application/octet-stream")},
                  data=fields, headers={"x-csrftoken": csrf_token(c), "accept": "application/json"})


def test_upload_lookup_and_queues(rt, cap, two_records):
    a, b = two_records
    _clerk(rt)
    make_staff(rt, "D0001", ["physician"])
    with web_client(rt) as c, web_client(rt) as doc:
        assert login(c, "R0001").status_code in (302, 303)
        r = c.get("/capture")
        assert r.status_code == 200 and "采集工作台" in r.text and "SANE 扫描仪" in r.text
        assert {"采集工作台", "上传页面", "手机拍摄", "待识别", "返工队列", "批次与计划"} <= set(
            nav_labels(r.text))
        for path in ("/capture/upload", "/capture/unidentified", "/capture/rework",
                     "/capture/batches"):
            assert c.get(path).status_code == 200, path

        r = c.get("/api/capture/lookup", params={"q": b.barcode})
        assert r.status_code == 200 and r.json()["admission_no"] == b.admission_no
        assert c.get("/api/capture/lookup", params={"q": "ZY209999999999"}).status_code == 404
        assert [e.outcome for e in events(rt, "capture.lookup")] == ["ok", "failed"]

        jpg = cap.encode(cap.page_image("病程记录"), "JPEG")
        r = _upload(c, jpg, "p1.jpg", admission=a.admission_no, source="upload")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["pages"] == 1 and not body["duplicate"] and "已接收" in body["message"]
        r = _upload(c, jpg, "p1.jpg", admission=a.admission_no)
        assert r.json()["duplicate"] and r.json()["capture_id"] == body["capture_id"]
        r = _upload(c, b"not an image at all", "x.jpg", admission=a.admission_no)
        assert r.status_code == 400 and "不支持的文件类型" in r.json()["detail"]
        r = _upload(c, jpg[:500], "cut.jpg")
        assert r.status_code == 400 and "不完整" in r.json()["detail"]
        # a phone photo without a record: waits in the unidentified queue
        r = _upload(c, cap.encode(cap.page_image("照片", seed=4), "JPEG"), "IMG_0001.jpg",
                    source="phone")
        assert r.status_code == 201
        phone_id = r.json()["capture_id"]
        run(rt)
        r = c.get(f"/api/capture/captures/{body['capture_id']}")
        assert r.json()["status"] == "done" and r.json()["frames"][0]["status"] == "stored"
        page_id = r.json()["frames"][0]["page_id"]
        r = c.get(f"/capture/pages/{page_id}/image", params={"size": "thumb"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        view = events(rt, "capture.page.view")[-1]
        assert (view.staff_no, view.admission_no) == ("R0001", a.admission_no)
        assert c.get(f"/capture/captures/{body['capture_id']}").status_code == 200

        r = c.get("/capture/unidentified")
        assert "IMG_0001.jpg" in r.text
        frame_ids = re.findall(r'name="frame_ids" value="(\d+)"', r.text)
        assert len(frame_ids) == 1
        assert c.get(f"/capture/frames/{frame_ids[0]}/image").status_code == 200
        r = post_form(c, f"/capture/unidentified/{phone_id}/assign",
                      {"admission": "ZY209999999999", "frame_ids": frame_ids})
        assert r.status_code == 400 and "不存在" in r.text
        r = post_form(c, f"/capture/unidentified/{phone_id}/assign",
                      {"admission": b.admission_no, "frame_ids": frame_ids})
        assert r.status_code in (302, 303)
        run(rt)
        with rt.sessions() as s:
            assert len(current_pages(s, b.id)) == 1
        assert events(rt, "capture.assign")[-1].admission_no == b.admission_no

        # no capture permission: no menu, no page, no image
        assert login(doc, "D0001").status_code in (302, 303)
        r = doc.get("/")
        assert "采集工作台" not in nav_labels(r.text)
        assert doc.get("/capture").status_code == 403
        assert doc.get(f"/capture/pages/{page_id}/image").status_code == 403
        assert doc.get("/capture/batches").status_code == 403


def test_rework_recapture_over_http(rt, cap, two_records):
    a, _ = two_records
    _clerk(rt)
    with web_client(rt) as c:
        login(c, "R0001")
        imgs = [cap.page_image("1", seed=1), cap.page_image("2", seed=2)]
        buf = io.BytesIO()
        imgs[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=imgs[1:])
        assert _upload(c, buf.getvalue(), "two.pdf", admission=a.admission_no).status_code == 201
        run(rt)
        with rt.sessions() as s, s.begin():
            from bingan.core.records import to_ref
            from bingan.core.models import Admission

            p2 = current_pages(s, a.id)[1]
            [ids] = rt.pm.hook.request_rework(rt=rt, session=s, admission=to_ref(s.get(Admission, a.id)),
                                              page_ids=[p2.id], reason="印章不清", by="Q0001")
        r = c.get("/capture/rework")
        assert "印章不清" in r.text and f"返工单 #{ids[0]}" in r.text
        redo = cap.encode(cap.page_image("2 重拍", seed=2), "JPEG")
        r = c.post(f"/capture/rework/{ids[0]}/upload", files={"file": ("redo.jpg", redo)},
                   data={"_csrf_token": csrf_token(c)}, follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        r = c.post(f"/capture/rework/{ids[0]}/upload", files={"file": ("x.jpg", b"junk")},
                   data={"_csrf_token": csrf_token(c)}, follow_redirects=False)
        assert r.status_code == 400 and "不支持的文件类型" in r.text
        run(rt)
        with rt.sessions() as s:
            cur = current_pages(s, a.id)
            assert len(cur) == 2 and cur[1].id != p2.id
            assert s.get(Page, p2.id).replaced_by_id == cur[1].id
            assert s.get(CaptureRework, ids[0]).status == "done"
        r = c.get("/capture/rework", params={"show": "done"})
        assert f"/capture/pages/{p2.id}/image" in r.text and "已替换" in r.text


def test_batches_plan_report_and_cover_over_http(rt, cap, two_records):
    a, b = two_records
    _clerk(rt)
    wb = openpyxl.Workbook()
    wb.active.append(["住院号", "应有页数"])
    wb.active.append([a.admission_no, 2])
    wb.active.append([b.admission_no, 3])
    buf = io.BytesIO()
    wb.save(buf)
    with web_client(rt) as c:
        login(c, "R0001")
        tok = csrf_token(c)
        r = c.post("/capture/batches", files={"list_file": ("清单.xlsx", buf.getvalue(), XLSX)},
                   data={"_csrf_token": tok, "name": "五月第一批", "start": "2026-05-11",
                         "daily_pages": "3"}, follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        url = r.headers["location"].split("?")[0]
        r = c.post("/capture/batches", data={"_csrf_token": tok, "name": "坏批次",
                                             "start": "2026-05-11", "daily_pages": "3",
                                             "list_text": "ZY209999999999, 3"},
                   files={"list_file": ("", b"", "application/octet-stream")},
                   follow_redirects=False)
        assert r.status_code == 400 and "ZY209999999999 不存在" in r.text
        r = c.get(url)
        assert r.status_code == 200 and "五月第一批" in r.text and a.admission_no in r.text
        assert "echarts.min.js" in r.text
        bid = int(url.rsplit("/", 1)[1])
        prog = c.get(f"/api/capture/batches/{bid}/progress").json()
        # a Monday outside any holiday, so the plan is the same with or without a calendar
        assert prog["planned"][:2] == [3, 2] and prog["days"][0] == "2026-05-11"
        r = post_form(c, f"{url}/plan", {"day": "2026-05-13", "pages": "7"})
        assert r.status_code in (302, 303)
        assert 7 in c.get(f"/api/capture/batches/{bid}/progress").json()["planned"]
        r = c.get(f"{url}/weekly.xlsx")
        assert r.status_code == 200 and r.headers["content-type"].startswith(XLSX)
        assert "filename*=UTF-8''" in r.headers["content-disposition"]
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        rows = [[c.value for c in row] for row in book["页数核对"].iter_rows(min_row=2)]
        assert [(x[1], x[4], x[5]) for x in rows] == [(a.admission_no, 2, 0),
                                                      (b.admission_no, 3, 0)]
        assert events(rt, "capture.report.export")
        r = c.get(f"/capture/cover/{a.admission_no}")
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
        assert events(rt, "capture.cover.print")[-1].admission_no == a.admission_no
        r = c.get(f"/capture/batches/{bid}/covers")
        import pypdfium2 as pdfium

        assert len(pdfium.PdfDocument(r.content)) == 2
        assert c.get("/capture/weekly.xlsx").status_code == 200
        # closing a batch with both records unfinished: asked (data-confirm says how many),
        # refused without a reason, then closed with it and told so
        page_html = c.get(url).text
        assert "2 份病案尚未完成数字化" in page_html and 'name="reason"' in page_html
        r = post_form(c, f"{url}/status", {"status": "closed"})
        assert r.status_code == 400 and "还有 2 份病案未完成数字化，关闭批次须填写理由" in r.text
        r = post_form(c, f"{url}/status", {"status": "closed", "reason": "病案借出未归还"})
        assert r.status_code in (302, 303)
        done = c.get(r.headers["location"]).text
        assert "批次已关闭（2 份病案未完成，理由：病案借出未归还）" in done
        ev = events(rt, "capture.batch.status")[-1]
        assert "病案借出未归还" in ev.detail and a.admission_no in ev.detail


def test_home_panel_for_clerks(rt, cap, two_records):
    """The clerk's home page: today's plan of the open batches, open batches, open rework
    (with its queue's link); a batch planner's figures link to the batches; a nurse sees no
    capture panel."""
    from homeutil import home_links, home_panels
    from bingan.core.models import Admission
    from bingan.core.records import to_ref
    from bingan_capture import batches as bt
    from bingan_capture.models import CapturePlan

    from bingan.core.staff import ensure_builtin_roles

    a, b = two_records
    today = bt.today(rt.tz)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)  # the roles with the plugins' default capabilities
        bid = bt.create_batch(s, rt, "今日批", today, 4, bt.parse_text(
            f"{a.admission_no},3\n{b.admission_no},2"), by="R0001").id
        rt.pm.hook.request_rework(rt=rt, session=s, admission=to_ref(s.get(Admission, a.id)),
                                  page_ids=[], reason="缺页", by="Q0001")
    with rt.sessions() as s:
        planned = sum(p.planned_pages for p in s.scalars(select(CapturePlan).where(
            CapturePlan.batch_id == bid, CapturePlan.day == today)))
    make_staff(rt, "C0001", ["clerk"])
    make_staff(rt, "R0001", ["records"])
    make_staff(rt, "N0001", ["nurse"])
    with web_client(rt) as c:
        assert login(c, "C0001").status_code in (302, 303)
        r = c.get("/")
        panel = home_panels(r.text)["capture-today"]
        assert panel == {"今日计划页数": str(planned), "今日已采集页数": "0", "进行中的批次": "1",
                         "返工待处理": "1", "待识别页面": "0", "处理失败的文件": "0"}
        links = home_links(r.text)["capture-today"]
        assert "/capture/rework" in links and "/capture/batches" not in links  # no capture.plan
        for href in links:
            assert c.get(href).status_code == 200, href
        c.cookies.clear()
        assert login(c, "R0001").status_code in (302, 303)
        assert "/capture/batches" in home_links(c.get("/").text)["capture-today"]
        c.cookies.clear()
        assert login(c, "N0001").status_code in (302, 303)
        assert "capture-today" not in home_panels(c.get("/").text)
