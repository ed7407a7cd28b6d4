"""The SANE adapter: scanimage's ``test`` backend (flatbed and feeder) into a record, through
capture's pipeline; its source as capture lists it."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bingan.core.cli import Ctx, build_cli
from bingan.core.models import Task
from bingan.core.pages import current_pages
from bingan_capture.ingest import TASK_KIND
from bingan_capture.models import CaptureFile


def _cli(rt, *args):
    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj, catch_exceptions=False)


def test_source_is_listed_with_acquire_and_availability(rt):
    srcs = {s.name: s for g in rt.pm.hook.capture_sources(rt=rt) for s in g}
    sane = srcs["sane"]
    assert sane.device == "scanner" and sane.href is None
    assert sane.available() == (shutil.which("scanimage") is not None)
    assert callable(sane.acquire)


@pytest.mark.skipif(shutil.which("scanimage") is None,
                    reason="scanimage not installed (apt-get install sane-utils)")
def test_sane_test_backend_scan(rt, cap, two_records):
    a, _ = two_records
    res = _cli(rt, "sane", "scan", "--admission", a.admission_no, "--device", "test",
               "--resolution", "75", "--mode", "Gray", "--option", "--test-picture=Grid",
               "--process")
    assert res.exit_code == 0, res.output
    with rt.sessions() as s:
        pages = current_pages(s, a.id)
        capf = s.scalar(select(CaptureFile))
        assert len(pages) == 1 and capf.source == "sane" and capf.media_type == "image/tiff"
        assert rt.store.get(capf.sha256).startswith((b"II*\x00", b"MM\x00*"))
        t = s.scalar(select(Task).where(Task.kind == TASK_KIND))
        assert t.status == "done"
    # the feeder: the test backend's ADF holds 10 sheets
    res = _cli(rt, "sane", "scan", "--admission", a.admission_no, "--device", "test",
               "--resolution", "50", "--mode", "Gray", "--adf", "--option", "--test-picture=Grid",
               "--option", "--source=Automatic Document Feeder", "--process")
    assert res.exit_code == 0, res.output
    with rt.sessions() as s:
        assert len(current_pages(s, a.id)) == 11
    res = _cli(rt, "sane", "scan", "--admission", a.admission_no, "--device", "nosuchdev")
    assert res.exit_code != 0 and "扫描失败" in res.output
