"""The hot-folder adapter: stable files are taken into capture, refused ones set aside with
the reason, sub-folders named by admission number, files sent twice stored once."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from bingan.core.cli import Ctx, build_cli
from bingan.core.pages import current_pages
from bingan_capture.models import CaptureFile


def _cli(rt, *args):
    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj, catch_exceptions=False)


def test_source_is_listed(rt):
    srcs = {s.name: s for g in rt.pm.hook.capture_sources(rt=rt) for s in g}
    assert srcs["hot_folder"].device == "scanner" and srcs["hot_folder"].acquire is None


def test_hot_folder_once_moves_files_to_done_and_rejected(rt, cap, two_records, tmp_path):
    a, b = two_records
    hot = tmp_path / "hot"
    hot.mkdir()
    jpg = cap.encode(cap.page_image("医嘱单"), "JPEG")
    (hot / "page1.jpg").write_bytes(jpg)
    (hot / "notes.jpg").write_text("这不是图像", encoding="utf-8")
    (hot / "half.png").write_bytes(cap.encode(cap.page_image(), "PNG")[:300])
    (hot / "scan.tmp").write_bytes(jpg)  # still being written by the scanner software
    (hot / b.admission_no).mkdir()
    (hot / b.admission_no / "p.jpg").write_bytes(cap.encode(cap.page_image("B", seed=9), "JPEG"))
    (hot / "ZY209999999999").mkdir()
    (hot / "ZY209999999999" / "p.jpg").write_bytes(cap.encode(cap.page_image("?", seed=3), "JPEG"))
    res = _cli(rt, "folder", "watch", str(hot), "--once", "--stable", "0.2", "--process")
    assert res.exit_code == 0, res.output
    assert "接收 2 个，拒收 3 个" in res.output
    assert sorted(p.name for p in (hot / "done").rglob("*") if p.is_file()) == ["p.jpg",
                                                                                "page1.jpg"]
    rejected = sorted(p.name for p in (hot / "rejected").rglob("*") if p.is_file())
    assert rejected == ["half.png", "half.png.error.txt", "notes.jpg", "notes.jpg.error.txt",
                        "p.jpg", "p.jpg.error.txt"]
    assert "不支持的文件类型" in (hot / "rejected" / "notes.jpg.error.txt").read_text("utf-8")
    assert "不存在" in (hot / "rejected" / "ZY209999999999" / "p.jpg.error.txt").read_text("utf-8")
    assert (hot / "scan.tmp").exists()
    with rt.sessions() as s:
        assert len(current_pages(s, b.id)) == 1  # sub-folder named by admission number
        caps = s.scalars(select(CaptureFile).order_by(CaptureFile.id)).all()
        assert [c.source for c in caps] == ["hot_folder", "hot_folder"]
        assert caps[1].status == "unidentified"  # page1.jpg has no barcode: waits for a clerk
    # the same file dropped again is taken as a duplicate and stores nothing new
    (hot / "again.jpg").write_bytes(jpg)
    res = _cli(rt, "folder", "watch", str(hot), "--once", "--stable", "0")
    assert "已接收过" in res.output and (hot / "done" / "again.jpg").exists()
