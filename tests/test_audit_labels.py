"""Audit actions are declared, each with a Chinese label: core's ``ACTION_LABELS`` and every
plugin's ``audit_action_labels`` hook (``access.<action>`` for each registered record action).

Recording an action nobody declared raises ``UndeclaredAuditAction`` in every runtime the tests
build (``BINGAN_STRICT_AUDIT=1``, set by tests/fixtures_db.py), so every action the suite
writes is declared; the audit pages then read 导出病案, not ``archive.export``. In production an
undeclared action is logged and recorded all the same (an audit event is never lost).
"""

from __future__ import annotations

import re

import pytest

from bingan.core import audit

CHINESE = re.compile(r"[\u3400-\u9fff]")


def test_every_declared_action_has_a_chinese_label(rt):
    labels = audit.declared_actions(rt)
    bad = sorted(a for a, label in labels.items() if not CHINESE.search(label or ""))
    assert not bad, f"audit actions without a Chinese label: {bad}"
    # core's, each enabled plugin's, and the access decisions
    assert {"login", "audit.export", "access.view", "capture.receive", "archive.export"} <= set(
        labels)


def test_recording_an_undeclared_action_fails_and_writes_nothing(rt):
    from sqlalchemy import func, select

    from bingan.core.models import AuditEvent

    with rt.sessions() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(audit.UndeclaredAuditAction, match="x.made_up"):
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "x.made_up")
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_production_records_an_undeclared_action_with_a_warning(rt, caplog):
    rt.strict_audit = False
    with rt.sessions() as s, s.begin():
        ref = audit.record(s, rt, "x.undeclared")
    assert ref.action == "x.undeclared" and "not declared" in caplog.text
