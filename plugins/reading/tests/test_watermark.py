"""The served page image (M9): the watermark is burned in on the server, tiled over the whole
page, semi-transparent (text stays dark), personal to the reader, and the stored bytes are
never sent, at any size."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo
import io

import numpy as np
from PIL import Image

from reading_world import E1, ink_cells, page_jpeg, rgb, staff_no, watermark_ink
from webutil import login, web_client
from bingan.core import pages, records

from bingan_reading.settings import ReadingSettings, WatermarkSettings
from bingan_reading.watermark import (
    Renderer, find_font, pick_level, watermark_text,
)

SIGNER = staff_no("physician", "signer")
REC = staff_no("records", "none")

CN = ZoneInfo("Asia/Shanghai")  # the default [core] timezone


def test_served_image_carries_a_tiled_watermark_and_keeps_the_text(world):
    rt = world.rt
    pid = world.page_ids[E1][2]
    stored_bytes = world.stored[pid]
    with web_client(rt, peer="10.1.2.3") as c:
        login(c, SIGNER)
        r = c.get(f"/records/{E1}/pages/{pid}.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    served, stored = rgb(r.content), rgb(stored_bytes)
    assert served.shape == stored.shape  # full size: 620 x 877
    ink = watermark_ink(served, stored)
    paper = (stored > 225).all(axis=2)
    share = ink.sum() / paper.sum()
    assert 0.01 < share < 0.25, share  # visible, yet most of the paper stays paper
    # tiled: ink in (nearly) every cell of a 4 x 4 grid over the page
    cells = ink_cells(ink)
    assert sum(c > 30 for c in cells) >= 14, cells
    # semi-transparent: the page's own dark text stays dark under the watermark
    dark = (stored < 90).all(axis=2)
    still_dark = (served[dark] < 150).all(axis=1).mean()
    assert still_dark > 0.97, still_dark
    # the seal keeps its red
    red = (stored[..., 0] > 150) & (stored[..., 1] < 90) & (stored[..., 2] < 90)
    assert red.sum() > 100 and (served[red][:, 0] - served[red][:, 1] > 60).mean() > 0.9


def test_watermark_is_personal(world):
    rt = world.rt
    pid = world.page_ids[E1][0]
    got = {}
    for who in (SIGNER, REC):
        with web_client(rt, peer="10.1.2.3") as c:
            login(c, who)
            got[who] = rgb(c.get(f"/records/{E1}/pages/{pid}.jpg?w=640").content)
    diff = np.abs(got[SIGNER] - got[REC]).max(axis=2)
    assert (diff > 30).sum() > 500  # another staff number, name: other pixels


def test_stored_bytes_never_leave_the_server(world):
    rt = world.rt
    stored = {pid: world.stored[pid] for pid in world.page_ids[E1]}
    # a piece of entropy-coded data from the middle of each stored JPEG
    probes = [data[len(data) // 2: len(data) // 2 + 48] for data in stored.values()]
    bodies = []
    with web_client(rt) as c:
        login(c, SIGNER)
        bodies.append(c.get(f"/records/{E1}").content)
        bodies.append(c.get(f"/api/reading/records/{E1}/pages").content)
        for pid in stored:
            for w in (None, 160, 320, 640, 1280, 5000):
                q = f"?w={w}" if w else ""
                r = c.get(f"/records/{E1}/pages/{pid}.jpg{q}")
                assert r.status_code == 200
                assert r.content != stored[pid]
                bodies.append(r.content)
        assert c.get(f"/records/{E1}.pdf").status_code == 404  # no PDF route
    for body in bodies:
        for probe in probes:
            assert probe not in body
    sizes = set()
    for body in bodies[2:]:
        sizes.add(Image.open(io.BytesIO(body)).size)
    assert sizes == {(155, 220), (310, 439), (620, 877)}  # levels of the stored 620 x 877


def test_corrupt_page_gives_a_clear_error_and_no_bytes(world):
    rt = world.rt
    good = page_jpeg("出院记录")
    with rt.sessions() as s, s.begin():
        adm = records.get_admission(s, E1)
        cut = pages.add_page(s, rt, adm, pages.NewPage(image=good[: len(good) // 3])).id
        junk = pages.add_page(s, rt, adm, pages.NewPage(image=b"not an image at all")).id
    with web_client(rt) as c:
        login(c, SIGNER)
        for pid in (cut, junk):
            r = c.get(f"/records/{E1}/pages/{pid}.jpg")
            assert r.status_code == 502 and "页面图像无法解码" in r.text
            assert not r.content.startswith(b"\xff\xd8")


def test_levels_and_the_a4_page():
    assert pick_level(2480, 1280, 2480) == 1   # 1240
    assert pick_level(2480, 160, 2480) == 4    # 155
    assert pick_level(2480, 2560, 2480) == 0
    assert pick_level(2480, None, 2480) == 0
    assert pick_level(2480, 700, 2480) == 2    # 620 >= 85 % of 700
    assert pick_level(2480, 740, 2480) == 1    # 620 < 85 % of 740: the sharper level
    r = Renderer(ReadingSettings().watermark, 64 * 2**20)
    data = page_jpeg("病案首页", size=(2480, 3508))
    base = r.base("a4", 1280, lambda: data)
    assert base.size == (1240, 1754)
    assert r.base("a4", 1280, lambda: b"") is base  # cached: the store is not read again
    thumb = r.base("a4", 160, lambda: data)
    assert thumb.size == (155, 220)
    now = dt.datetime(2026, 3, 1, 9, 30, 12, tzinfo=dt.timezone.utc)
    a = r.render(base, watermark_text("D0001", "陈志远", "10.0.0.8", now, tz=CN))
    b = r.render(base, watermark_text("D0001", "陈志远", "10.0.0.8",
                                      now + dt.timedelta(minutes=1), tz=CN))
    assert a != b  # the time is in the mark
    capped = Renderer(WatermarkSettings(max_width=1000), 64 * 2**20)
    assert capped.base("a4", None, lambda: data).width == 1000


def test_watermark_text_and_font():
    now = dt.datetime(2026, 3, 1, 9, 30, 12, tzinfo=dt.timezone.utc)
    assert watermark_text("D0001", "陈志远", "10.0.0.8", now, tz=CN) == \
        "工号 D0001 陈志远 2026-03-01 17:30 10.0.0.8"
    assert watermark_text("D0001", "陈志远", None, now, cjk=False, tz=CN) == \
        "ID D0001 chenzhiyuan 2026-03-01 17:30 -"
    font = find_font()
    assert font.cjk and font.path  # fonts-noto-cjk (or another CJK font) on this machine


def test_spliced_page_equals_a_whole_encode_of_the_watermarked_page():
    """A level's JPEG is spliced from its cached per-MCU encoding and the freshly encoded
    MCUs under the watermark: decoded, it is pixel for pixel the page composited whole and
    encoded whole; the MCUs without ink are the cached bytes. Sizes with partial MCUs on the
    right and bottom (1240 x 1754, 155 x 220, 2480 x 3508)."""
    import cv2

    from bingan_reading.watermark import Level, _scan

    settings = ReadingSettings().watermark
    r = Renderer(settings, 256 * 2**20)
    data = page_jpeg("病程记录", size=(2480, 3508))
    now = dt.datetime(2026, 3, 1, 9, 30, 12, tzinfo=dt.timezone.utc)
    text = watermark_text("D0001", "陈志远", "10.0.0.8", now, tz=CN)
    for width, size in ((1280, (1240, 1754)), (160, (155, 220)), (None, (2480, 3508))):
        lv = r.level("a4", width, lambda: data)
        assert isinstance(lv, Level) and lv.size == size
        out = r.render(lv, text)
        got = Image.open(io.BytesIO(out))
        got.load()
        assert got.size == size and got.format == "JPEG"
        assert cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR).shape[:2] == \
            size[::-1]  # another decoder reads it too
        # the reference: the whole page composited as before (the 32 x 32 paste masks) and
        # encoded whole with the same settings
        mark = r.mark(text, size)
        assert 0 < len(mark.index) < len(lv.mcus)
        whole = lv.image.copy()
        for xy, m in mark.blocks:
            whole.paste(tuple(settings.color), xy, m)
        buf = io.BytesIO()
        whole.save(buf, "JPEG", quality=settings.jpeg_quality, subsampling=2,
                   restart_marker_blocks=1)
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        assert np.array_equal(np.asarray(got.convert("RGB")), ref)
        # the MCUs without ink are the cached bytes; those with ink were encoded anew
        head, segs = _scan(out)
        _, cached = lv.encoded(settings.jpeg_quality)
        inked = set(mark.index.tolist())
        assert all(segs[i] == cached[i] for i in range(len(segs)) if i not in inked)
        assert sum(segs[i] != cached[i] for i in inked) > len(inked) // 2


def _expected_images(rt, who: str, lv, ip: str, t0: dt.datetime, t1: dt.datetime) -> set[bytes]:
    """The images ``who`` may be served between t0 and t1: the page's level with their own
    watermark for each minute in between."""
    from sqlalchemy import select

    from bingan.core.models import Staff
    from bingan_reading.watermark import renderer

    with rt.sessions() as s:
        name = s.scalar(select(Staff.name).where(Staff.staff_no == who))
    r = renderer(rt.settings(ReadingSettings))
    minutes = {t0.replace(second=0, microsecond=0), t1.replace(second=0, microsecond=0)}
    return {r.render(lv, watermark_text(who, name, ip, m, r.font.cjk, tz=rt.tz))
            for m in minutes}


def test_cached_page_levels_never_carry_another_readers_watermark(world):
    """Two readers take turns on the same page in one process (its level and encoding are
    cached, each reader's watermark is cached): each gets exactly the page with their own
    watermark, never the other's."""
    from bingan.core.models import Page, utcnow
    from bingan_reading.watermark import renderer

    rt = world.rt
    pid = world.page_ids[E1][1]
    live = staff_no("physician", "grant_live")
    with web_client(rt, peer="10.1.2.3") as a, web_client(rt, peer="10.1.2.3") as b:
        login(a, SIGNER)
        login(b, live)
        t0 = utcnow()
        got = [(who, c.get(f"/records/{E1}/pages/{pid}.jpg?w=640").content)
               for who, c in ((SIGNER, a), (live, b), (SIGNER, a), (live, b))]
        t1 = utcnow()
    with rt.sessions() as s:
        sha = s.get(Page, pid).image_sha256
    lv = renderer(rt.settings(ReadingSettings)).level(sha, 640, lambda: rt.store.get(sha))
    mine = {who: _expected_images(rt, who, lv, "10.1.2.3", t0, t1) for who in (SIGNER, live)}
    assert not mine[SIGNER] & mine[live]
    for who, body in got:
        assert body in mine[who], who


def test_revoked_grant_and_deny_rule_count_at_the_next_page(world):
    """Nothing about access is kept between page requests: the reader's next page after a
    revocation, or after an administrator's deny rule, is refused; lifting the rule lets
    the next one through."""
    from sqlalchemy import select

    from bingan.core.grants import revoke_grant
    from bingan.core.models import Grant, Staff
    from bingan_reading.rules import add_rule, revoke_rule

    rt = world.rt
    pids = world.page_ids[E1]
    live = staff_no("physician", "grant_live")
    with web_client(rt) as c:
        login(c, live)
        assert c.get(f"/records/{E1}/pages/{pids[0]}.jpg?w=320").status_code == 200
        with rt.sessions() as s, s.begin():
            rule = add_rule(s, rt, subject_type="user", subject=live, effect="deny",
                            actions=["view"]).id
        r = c.get(f"/records/{E1}/pages/{pids[1]}.jpg?w=320")
        assert r.status_code == 403 and not r.content.startswith(b"\xff\xd8")
        with rt.sessions() as s, s.begin():
            revoke_rule(s, rt, rule)
        assert c.get(f"/records/{E1}/pages/{pids[1]}.jpg?w=320").status_code == 200
        with rt.sessions() as s, s.begin():
            gids = s.scalars(select(Grant.id).join(Staff, Grant.staff_id == Staff.id)
                             .where(Staff.staff_no == live, Grant.revoked_at.is_(None))).all()
            assert gids
            for gid in gids:
                revoke_grant(s, rt, gid, reason="会诊已结束")
        r = c.get(f"/records/{E1}/pages/{pids[2]}.jpg?w=320")
        assert r.status_code == 403 and "无权查阅" in r.text
