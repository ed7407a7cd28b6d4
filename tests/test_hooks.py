"""One test per hookspec: each proves core calls the hook and uses what it returns."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from click.testing import CliRunner

from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionIn, PatientIn, StaffRef, Vote
from bingan.core.models import Admission
from bingan.core.runtime import build_runtime
from support import make_config

UTC = dt.timezone.utc


def _rt(tmp_path, db_url, enabled=(), eps=None, extra=()):
    return build_runtime(make_config(tmp_path / "home", db_url, list(enabled)), eps=eps,
                         extra_modules=extra)


def _module(**hooks):
    m = types.ModuleType("test_plugin_" + "_".join(hooks))
    for name, fn in hooks.items():
        setattr(m, name, hookimpl(fn))
    return m


def _admission(mrn="00100001", adm="ZY202601000001", visit=1, **kw):
    return AdmissionIn(patient=PatientIn(mrn=mrn, name="张三", sex="M"), admission_no=adm,
                       visit_no=visit, admitted_at=dt.datetime(2026, 1, 5, 2, tzinfo=UTC),
                       discharged_at=dt.datetime(2026, 1, 12, 2, tzinfo=UTC), **kw)


def test_hook_register_routes(tmp_path, sample_eps):
    from bingan.core.web.app import create_app

    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", ["sample"], sample_eps)
    paths = {r.path for r in create_app(rt).routes}
    assert {"/sample/hello", "/login", "/audit", "/admin/users"} <= paths


def test_hook_register_nav(tmp_path, sample_eps):
    from bingan.core.web.render import visible_nav

    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", ["sample"], sample_eps)
    auditor = StaffRef(1, "S1", "审计", None, frozenset({"auditor"}), frozenset({"audit.read"}))
    groups = dict(visible_nav(rt, auditor))
    hrefs = {i.href for items in groups.values() for i in items}
    assert "/sample/page" in hrefs and "/audit" in hrefs
    assert "/admin/users" not in hrefs  # needs admin.users
    assert "示例组" in groups
    assert visible_nav(rt, None) == []


def test_hook_register_actions(rt):
    from bingan.core.permissions import UnknownAction, decide, registered_actions
    from bingan.core import records

    assert {"view", "print", "export"} <= set(registered_actions(rt))
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, _admission())
        user = StaffRef(1, "X", "x", None, frozenset(), frozenset())
        with pytest.raises(UnknownAction):
            decide(s, rt, user, adm, "teleport")


def test_hook_register_permissions(tmp_path):
    from bingan.core.web.admin import all_permissions

    extra = _module(register_permissions=lambda: [
        __import__("bingan.hooks.types", fromlist=["PermissionInfo"]).PermissionInfo("x.do", "做X")])
    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", extra=[extra])
    names = [p.name for p in all_permissions(rt)]
    assert "x.do" in names and "audit.read" in names


def test_hook_register_commands(tmp_path, sample_eps):
    from bingan.core.cli import build_cli

    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", ["sample"], sample_eps)
    res = CliRunner().invoke(build_cli(rt), ["--help"])
    assert "sample-hello" in res.output and "audit" in res.output


def test_hook_register_jobs(tmp_path, sample_eps):
    from bingan.core.jobs import build_scheduler

    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", ["sample"], sample_eps)
    sched = build_scheduler(rt)
    ids = {j.id for j in sched.get_jobs()}
    assert {"sample.tick", "core.expire_grants", "core.audit_checkpoint",
            "core.fixity_sample"} <= ids
    import bingan_sample

    job = sched.get_job("sample.tick")
    job.func(*job.args)
    assert bingan_sample.RAN[-1] == "tick"


def test_plugin_migrations_from_its_metadata(tmp_path, sample_eps, empty_db_url):
    """PluginInfo.migrations is a plugin's alembic branch: upgraded with core's, idempotent."""
    import sqlalchemy as sa

    from bingan.core.migrate import current_heads, pending, upgrade

    rt = _rt(tmp_path, empty_db_url, ["sample"], sample_eps)
    from alembic.script import ScriptDirectory

    from bingan.core.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(rt)).get_heads()
    assert "s001_sample" in heads and any(h.startswith("000") for h in heads)
    assert pending(rt) == sorted(heads)
    upgrade(rt)
    assert pending(rt) == []
    tables = set(sa.inspect(rt.engine).get_table_names())
    assert {"sample_note", "admission", "audit_event"} <= tables
    heads = current_heads(rt)
    upgrade(rt)  # idempotent
    assert current_heads(rt) == heads
    rt.close()


def test_a_disabled_plugins_migrations_do_not_stop_the_others(tmp_path, sample_eps,
                                                               empty_db_url):
    """A plugin switched off in plugins.toml (still installed) keeps its tables and its row in
    alembic_version: serve's check and `db upgrade` still work; the branch stays put and comes
    back when the plugin is enabled again. A revision no installed plugin knows is named."""
    import sqlalchemy as sa

    from bingan.core.migrate import current_heads, pending, upgrade

    rt = _rt(tmp_path, empty_db_url, ["sample"], sample_eps)
    upgrade(rt)
    applied = current_heads(rt)
    assert "s001_sample" in applied
    rt.close()

    off = _rt(tmp_path, empty_db_url, [], sample_eps)  # installed, not enabled
    assert pending(off) == []
    assert upgrade(off) == applied
    assert "sample_note" in sa.inspect(off.engine).get_table_names()
    off.close()

    gone = _rt(tmp_path, empty_db_url, [], [])  # not even installed
    with pytest.raises(RuntimeError, match="s001_sample"):
        pending(gone)
    gone.close()


def test_hook_storage_backend(tmp_path):
    from bingan.core.storage import LocalBlobStore

    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db")
    assert isinstance(rt.store, LocalBlobStore)

    class MemStore(dict):
        pass

    mem = MemStore()
    extra = _module(storage_backend=lambda url, home: mem if url.startswith("mem:") else None)
    cfg = make_config(tmp_path / "home", f"sqlite:///{tmp_path}/a.db", [])
    cfg.storage_url = "mem://x"
    rt2 = build_runtime(cfg, extra_modules=[extra])
    assert rt2.store is mem
    cfg.storage_url = "s3://nobody"
    from bingan.core.config import ConfigError

    with pytest.raises(ConfigError, match="no storage backend for the 's3' scheme"):
        build_runtime(cfg)  # at start-up, not at the first blob


def test_hook_admission_upserted(rt):
    from bingan.core import records

    seen = []

    def upserted(session, admission, created):
        # the caller's session, in its transaction: the admission is flushed and visible there
        assert session is s and session.in_transaction()
        row = session.get(Admission, admission.id)
        seen.append((admission.admission_no, admission.mrn, created, row.admission_no))

    rt.pm.register(_module(admission_upserted=upserted))
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _admission())
        records.upsert_admission(s, rt, _admission())
    assert seen == [("ZY202601000001", "00100001", True, "ZY202601000001"),
                    ("ZY202601000001", "00100001", False, "ZY202601000001")]


def test_hook_access_vote(rt):
    from bingan.core import records
    from bingan.core.permissions import decide

    calls = []

    def vote(context):
        calls.append(context.action)
        if context.user.staff_no == "ALLOW":
            return Vote(True, "test:allow")
        if context.user.staff_no == "BOTH":
            return Vote(False, "test:deny", "no")
        return None

    rt.pm.register(_module(access_vote=vote))
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, _admission())
        allow = StaffRef(1, "ALLOW", "a", None, frozenset(), frozenset())
        both = StaffRef(2, "BOTH", "b", None, frozenset({"records"}), frozenset())
        none = StaffRef(3, "NONE", "c", None, frozenset(), frozenset())
        assert decide(s, rt, allow, adm, "view").allowed
        d = decide(s, rt, both, adm, "view")  # role allows, plugin denies: deny wins
        assert not d.allowed and "test:deny" in d.reason
        assert not decide(s, rt, none, adm, "view").allowed  # no vote is deny
    assert calls == ["view", "view", "view"]


def test_hook_audit_recorded(rt):
    """Announced after the commit, and only then: an event rolled back (the whole transaction,
    or the savepoint that wrote it) is never announced; the hook sees the event committed."""
    from sqlalchemy import select

    from bingan.core import audit
    from bingan.core.models import AuditEvent

    got, seen_committed = [], []

    def forward(event, rt):
        got.append((event.seq, event.action))
        with rt.sessions() as other:  # a forwarder reading the chain finds the event
            seen_committed.append(other.scalar(
                select(AuditEvent.seq).where(AuditEvent.seq == event.seq)) is not None)

    rt.pm.register(_module(audit_action_labels=lambda: {"x.one": "测试一", "x.two": "测试二"},
                           audit_recorded=forward))
    rt.audit_actions = None  # declared actions are computed once per runtime: recompute
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "x.one")
        assert got == []  # not before the commit
        try:
            with s.begin_nested():
                audit.record(s, rt, "x.two")
                raise ValueError("the savepoint rolls back")
        except ValueError:
            pass
        audit.record(s, rt, "x.two")
    assert [a for _, a in got] == ["x.one", "x.two"] and all(seen_committed)
    with pytest.raises(RuntimeError), rt.sessions() as s, s.begin():
        audit.record(s, rt, "x.one")
        raise RuntimeError("the transaction rolls back")
    assert len(got) == 2  # nothing announced for the rolled-back event


def test_undeclared_audit_action_is_an_error_in_tests(rt):
    from bingan.core import audit

    assert rt.strict_audit  # the test suite sets BINGAN_STRICT_AUDIT=1
    with rt.sessions() as s, s.begin():
        with pytest.raises(audit.UndeclaredAuditAction, match="x.nobody"):
            audit.record(s, rt, "x.nobody")
        assert "access.view" in audit.declared_actions(rt)  # decisions on registered actions


def test_hook_notify(rt):
    from bingan.core import notify
    from bingan.core.staff import add_staff, ensure_builtin_roles

    got = []
    rt.pm.register(_module(notify=lambda notification: got.append(notification)))
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        add_staff(s, "N001", "护士甲", "nurse@2026", None, ["nurse"])
        notify.send(s, rt, "N001", "借阅申请已批准", "请在期限内查阅", "/x")
        assert notify.unread_count(s, s.scalar(__import__("sqlalchemy").select(
            __import__("bingan.core.models", fromlist=["Staff"]).Staff.id))) == 1
    assert got[0].staff_no == "N001" and got[0].title == "借阅申请已批准"


def test_hook_demo_loaded(demo_hospital):
    # the run's shared `bingan demo load` (bingan.testing.demo) registers a demo_loaded
    # implementation that records what each call received
    res = demo_hospital.load
    assert res.exit_code == 0, res.output
    assert res.demo_loaded == [300]


def test_permission_default_roles_apply_to_new_roles(rt):
    from sqlalchemy import select

    from bingan.core.models import Role
    from bingan.core.staff import ensure_builtin_roles
    from bingan.hooks.types import PermissionInfo

    rt.pm.register(_module(register_permissions=lambda: [
        PermissionInfo("x.scan", "扫描", default_roles=("clerk",))]))
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        perms = s.scalar(select(Role.permissions).where(Role.name == "clerk"))
        assert "x.scan" in perms and "records.manage" in perms


def test_hook_audit_action_labels(tmp_path):
    from bingan.core.web.templating import build_environment

    extra = _module(audit_action_labels=lambda: {"x.export": "导出某物"})
    rt = _rt(tmp_path, f"sqlite:///{tmp_path}/a.db", extra=[extra])
    f = build_environment(rt).filters["action_label"]
    assert f("x.export") == "导出某物" and f("login") == "登录" and f("y.unknown") == "y.unknown"
