"""Demo convenience: the demo hospital's record-room staff and physicians may search."""

from __future__ import annotations

from sqlalchemy import select

from bingan.core import audit
from bingan.core.models import Role

DEMO_GRANTS = {"records": ["search.use", "search.export"], "clerk": ["search.use"],
               "physician": ["search.use"], "qc": ["search.use"]}


def grant_demo_roles(rt) -> dict[str, list[str]]:
    """Add the search capabilities to the demo roles that lack them (audited)."""
    added: dict[str, list[str]] = {}
    with rt.sessions() as s, s.begin():
        for role in s.scalars(select(Role).where(Role.name.in_(list(DEMO_GRANTS)))):
            missing = [p for p in DEMO_GRANTS[role.name] if p not in (role.permissions or [])]
            if missing:
                role.permissions = [*(role.permissions or []), *missing]
                added[role.name] = missing
        if added:
            audit.record(s, rt, "admin.role.update", actor=audit.Actor.cli(),
                         detail={"by": "search plugin (demo)", "added": added})
    return added
