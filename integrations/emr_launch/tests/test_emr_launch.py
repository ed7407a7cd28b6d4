"""EMR launch links through the real app (SQLite and PostgreSQL): a signed link signs the
mapped physician in and opens the record in the viewer, whose own access decision applies;
replayed, expired, tampered, unknown-user, unknown-system and second-factor links are refused
and audited; the 360 view embed takes the same link and may be framed by its origin only."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import select

from bingan.core import audit, intake
from bingan.core.models import AuditEvent, WebSession
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, DiagnosisIn, PatientIn
from webutil import web_client
from bingan_emr_launch.settings import EmrLaunchSettings

KEY = "k3y-of-the-emr-" + "x" * 30
CN = dt.timezone(dt.timedelta(hours=8))
ADM = "ZY202603000001"
SETTINGS = {"systems": {"EMR": {"key": KEY, "users": {"zhang.s": "D0001", "li.s": "D0002",
                                                     "boss": "A0001", "gone": "D0009"}}},
            "embed_origins": ["https://360.hospital.local"]}


@pytest.fixture
def lrt(db_url, tmp_path):
    from bingan.core.runtime import build_runtime, set_current
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url)
    cfg.plugin_settings["emr_launch"] = SETTINGS
    rt = build_runtime(cfg)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])
        add_staff(s, "A0001", "管理员", None, None, ["admin"])
        start = dt.datetime(2026, 3, 1, 9, 30, tzinfo=CN)
        intake.record_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00100001", name="张三", sex="M"), admission_no=ADM,
            visit_no=1, admitted_at=start, discharged_at=start + dt.timedelta(days=7),
            admit_department="1001", discharge_department="1001", discharge_way="1",
            diagnoses=(DiagnosisIn("I20.000", "不稳定型心绞痛", "main", "1"),),
            signers={"attending": "D0001"}), intake.Source("clerk", audit.Actor("R0001")))
    yield rt
    rt.close()
    set_current(None)


def _link(rt, user="zhang.s", admission=ADM, path="/emr/launch", **kw) -> str:
    from bingan_emr_launch.links import make_link

    return make_link(rt.settings(EmrLaunchSettings), "", "EMR", user, admission, path=path, **kw)


def _launches(rt):
    with rt.sessions() as s:
        return [(e.staff_no, e.outcome, e.admission_no, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == "emr.launch").order_by(AuditEvent.seq))]


def test_link_opens_the_viewer_as_the_mapped_physician_once(lrt):
    rt = lrt
    link = _link(rt)
    with web_client(rt) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        assert r.headers["location"] == f"/records/{ADM}"
        r = c.get(f"/records/{ADM}")
        assert r.status_code == 200 and ADM in r.text and "D0001" in r.text
    with rt.sessions() as s:
        ws = s.scalar(select(WebSession).where(WebSession.user_agent.like("emr:EMR%")))
        assert ws.staff.staff_no == "D0001" and ws.mfa_passed
        view = s.scalar(select(AuditEvent).where(AuditEvent.action == "record.view")
                        .order_by(AuditEvent.seq.desc()))
        assert (view.staff_no, view.outcome, view.admission_no) == ("D0001", "ok", ADM)
    # the same link again, from a fresh browser: refused as a replay
    with web_client(rt) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code == 403 and "已使用过" in r.text
        assert c.get(f"/records/{ADM}", follow_redirects=False).status_code in (302, 303, 401)
    got = _launches(rt)
    assert [(g[0], g[1], g[2]) for g in got] == [("D0001", "ok", ADM), (None, "denied", ADM)]
    assert '"why": "replay"' in got[1][3]


def test_the_staff_members_rights_apply(lrt):
    """D0002 did not sign the record: signed in by the link, refused by the viewer."""
    rt = lrt
    with web_client(rt) as c:
        r = c.get(_link(rt, user="li.s"), follow_redirects=False)
        assert r.status_code in (302, 303)
        r = c.get(f"/records/{ADM}")
        assert r.status_code == 403
    with rt.sessions() as s:
        view = s.scalar(select(AuditEvent).where(AuditEvent.action == "record.view")
                        .order_by(AuditEvent.seq.desc()))
        assert (view.staff_no, view.outcome) == ("D0002", "denied")


@pytest.mark.parametrize("case", ["expired", "future", "tampered", "bad_sig", "unknown_user",
                                  "inactive_user", "unknown_system", "second_factor",
                                  "unknown_admission", "malformed"])
def test_refused_links_are_audited(lrt, case):
    from bingan.core.staff import set_active

    rt = lrt
    now = int(time.time())
    link, why = {
        "expired": (_link(rt, ts=now - 121), "expired"),
        "future": (_link(rt, ts=now + 90), "expired"),
        "tampered": (_link(rt).replace(ADM, "ZY202603000002"), "bad_signature"),
        "bad_sig": (_link(rt)[:-4] + "0000", "bad_signature"),
        "unknown_user": (_link(rt, user="nobody"), "unknown_user"),
        "inactive_user": (_link(rt, user="li.s"), "unknown_user"),
        "unknown_system": (_link(rt).replace("system=EMR", "system=OTHER"), "unknown_system"),
        "second_factor": (_link(rt, user="boss"), "second_factor"),
        "unknown_admission": (_link(rt, admission="ZY202699999999"), "unknown_admission"),
        "malformed": (_link(rt).replace("&nonce=", "&nonce=x&n="), "malformed"),
    }[case]
    if case == "inactive_user":
        with rt.sessions() as s, s.begin():
            set_active(s, "D0002", False)
    with web_client(rt) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code == 403, r.text
        assert "bingan_session" not in r.cookies
    ((staff_no, outcome, _adm, detail),) = _launches(rt)
    assert outcome == "denied" and f'"why": "{why}"' in detail
    with rt.sessions() as s:
        assert s.scalar(select(WebSession.id)) is None


def test_embed_uses_the_same_link_and_may_be_framed_by_the_360_view(lrt):
    rt = lrt
    from bingan.core.pages import NewPage, add_page
    from bingan.core.models import Admission

    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == ADM))
        page = add_page(s, rt, adm, NewPage(image=b"\xff\xd8not-really-a-jpeg"))
        pid = page.id
    with web_client(rt, https=True) as c:
        r = c.get(_link(rt, path="/emr/embed"))
        assert r.status_code == 200, r.text
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'self' https://360.hospital.local" in csp
        assert "frame-ancestors 'none'" not in csp
        assert "张三" in r.text and f"/records/{ADM}/pages/{pid}.jpg" in r.text
        assert "samesite=none" in r.headers["set-cookie"].lower()
        # every other page stays unframeable
        r = c.get(f"/records/{ADM}")
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    with web_client(rt, https=True) as c:
        r = c.get(_link(rt, user="li.s", path="/emr/embed"))
        assert r.status_code == 403 and "无权查阅" in r.text and "张三" not in r.text
    assert [(g[0], g[1]) for g in _launches(rt)] == [("D0001", "ok"), ("D0002", "ok")]


def test_settings_are_checked():
    from bingan.core.config import ConfigError, validate_settings

    with pytest.raises(ConfigError, match="32"):
        validate_settings("plugins.emr_launch", EmrLaunchSettings, {"systems": {"EMR": {"key": "short"}}})
    with pytest.raises(ConfigError, match="origin"):
        validate_settings("plugins.emr_launch", EmrLaunchSettings, {"embed_origins": ["360.local/x"]})
    with pytest.raises(ConfigError, match="max_age"):
        validate_settings("plugins.emr_launch", EmrLaunchSettings, {"max_age_seconds": 86400})
