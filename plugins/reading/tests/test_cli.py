"""``bingan access explain / grant / revoke``: why can't Dr. X open this record?"""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from reading_world import E1, E2, MRN2, staff_no
from bingan.core.cli import Ctx, build_cli
from bingan.core.models import AuditEvent, Grant


def _run(rt, *args):
    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj)


def test_explain_every_kind_of_answer(world):
    rt = world.rt
    r = _run(rt, "access", "explain", staff_no("physician", "signer"), E1)
    assert r.exit_code == 0, r.output
    assert "reading: [允许] reading:signer  病案首页签名人（主治医师）" in r.output
    assert r.output.rstrip().endswith("结论：允许 — 允许（reading:signer）")

    r = _run(rt, "access", "explain", staff_no("physician", "grant_expired"), E1)
    out = r.output
    assert r.exit_code == 0, out
    assert "core.defaults.access: [允许] grant:" in out and "← 已过期，不计" in out
    assert "已到期（来源 reading，查阅申请 #" in out
    assert "已批准" in out and "结论：拒绝 — 授权已于" in out

    r = _run(rt, "access", "explain", staff_no("nurse", "rejected"), E1)
    assert "（没有任何插件投票）" in r.output and "已驳回，提交于" in r.output
    assert "驳回理由：理由不充分" in r.output and "结论：拒绝 — 无授权" in r.output

    r = _run(rt, "access", "explain", staff_no("auditor", "stay"), E1)
    assert "reading:current_stay" in r.output and "ZY202609000102" in r.output

    r = _run(rt, "access", "explain", staff_no("records", "none"), E2, "print")
    assert "core.defaults.access: [允许] role:records" in r.output
    assert "操作：print（打印）" in r.output and "结论：允许" in r.output
    with rt.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "access.print")) is None
        n = len(s.scalars(select(AuditEvent).where(AuditEvent.action == "reading.explain")).all())
    assert n == 5


def test_explain_bad_input(world):
    rt = world.rt
    for args, msg in [(("NOBODY", E1), "工号 NOBODY 不存在"),
                      ((staff_no("physician", "none"), "ZY209901999999"), "unknown admission"),
                      ((staff_no("physician", "none"), E1, "fly"), "未注册的操作")]:
        r = _run(rt, "access", "explain", *args)
        assert r.exit_code == 1 and msg in r.output, r.output


def test_grant_and_revoke_commands(world):
    rt = world.rt
    doc = staff_no("nurse", "none")
    r = _run(rt, "access", "grant", doc, "--mrn", MRN2, "--days", "2", "--reason", "院感调查")
    assert r.exit_code == 0 and "已授权 #" in r.output, r.output
    gid = int(r.output.split("#")[1].split("：")[0])
    assert "结论：允许" in _run(rt, "access", "explain", doc, E2).output
    assert _run(rt, "access", "revoke", str(gid)).exit_code == 0
    assert "结论：拒绝" in _run(rt, "access", "explain", doc, E2).output
    bad = _run(rt, "access", "grant", doc, "--admission", E2, "--mrn", MRN2)
    assert bad.exit_code == 1 and "须指定" in bad.output
    assert _run(rt, "access", "revoke", "999999").exit_code == 1
    with rt.sessions() as s:
        g = s.get(Grant, gid)
        assert g.source == "cli" and g.revoked_at is not None
