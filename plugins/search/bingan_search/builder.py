"""The combined-search form (groups of condition rows) to and from the query tree.

Form fields: ``mode`` (and/or between groups); per group ``g<i>.mode``, ``g<i>.not``; per row
``g<i>.r<j>.field``, ``.op``, ``.value``, ``.value2`` (second bound of ``between``) and
``.not``. A tree deeper than groups of conditions is edited as JSON instead (``q``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bingan_search.query import FIELDS, NO_VALUE_OPS, Cond, Group, Node, Not, QueryError, decode

_KEY = re.compile(r"^g(\d+)\.r(\d+)\.(field|op|value|value2|not)$")
_GKEY = re.compile(r"^g(\d+)\.(mode|not)$")


@dataclass
class Row:
    field: str = ""
    op: str = ""
    value: str = ""
    value2: str = ""
    negate: bool = False
    idx: int = 0


@dataclass
class GroupForm:
    mode: str = "and"
    negate: bool = False
    rows: list[Row] = field(default_factory=list)
    idx: int = 0


@dataclass
class BuilderForm:
    mode: str = "and"
    groups: list[GroupForm] = field(default_factory=list)


def _get(form: Mapping[str, Any], key: str) -> str:
    v = form.get(key, "")
    if isinstance(v, list):
        v = v[-1] if v else ""
    return str(v or "").strip()


def parse_form(form: Mapping[str, Any]) -> BuilderForm:
    """The builder state posted by the page (rows and groups in index order)."""
    groups: dict[int, GroupForm] = {}
    rows: dict[tuple[int, int], Row] = {}
    for key in form:
        m = _KEY.match(key)
        if m:
            g, r, attr = int(m.group(1)), int(m.group(2)), m.group(3)
            row = rows.setdefault((g, r), Row(idx=r))
            groups.setdefault(g, GroupForm(idx=g))
            if attr == "not":
                row.negate = _get(form, key) not in ("", "0", "false")
            else:
                setattr(row, attr, _get(form, key))
            continue
        m = _GKEY.match(key)
        if m:
            g = int(m.group(1))
            grp = groups.setdefault(g, GroupForm(idx=g))
            if m.group(2) == "mode":
                grp.mode = "or" if _get(form, key) == "or" else "and"
            else:
                grp.negate = _get(form, key) not in ("", "0", "false")
    for (g, _r), row in sorted(rows.items()):
        groups[g].rows.append(row)
    mode = "or" if _get(form, "mode") == "or" else "and"
    return BuilderForm(mode, [groups[g] for g in sorted(groups)])


def _row_cond(row: Row) -> Node | None:
    if not row.field:
        return None
    spec = FIELDS.get(row.field)
    if spec is None:
        raise QueryError(f"不能按字段 {row.field!r} 检索")
    op = row.op or spec.ops[0]
    if op in NO_VALUE_OPS:
        value: Any = None
    elif op == "between":
        if not row.value and not row.value2:
            return None
        value = [row.value, row.value2]
    else:
        if not row.value:
            return None
        value = row.value
    cond: Node = Cond(row.field, op, value)
    return Not(cond) if row.negate else cond


def to_query(b: BuilderForm) -> Group:
    """The tree of a builder form (empty rows are ignored)."""
    items: list[Node] = []
    for g in b.groups:
        conds = [c for c in (_row_cond(r) for r in g.rows) if c is not None]
        if not conds:
            continue
        node: Node = conds[0] if len(conds) == 1 and not g.negate else Group(g.mode, conds)
        items.append(Not(node) if g.negate else node)
    return Group(b.mode, items)


def _row_from(node: Node, idx: int) -> Row | None:
    negate = False
    if isinstance(node, Not):
        negate, node = True, node.item
    if not isinstance(node, Cond):
        return None
    v = node.value
    value, value2 = "", ""
    if node.op == "between" and isinstance(v, list) and len(v) == 2:
        value, value2 = str(v[0]), str(v[1])
    elif isinstance(v, list):
        value = ", ".join(str(x) for x in v)
    elif isinstance(v, bool):
        value = "1" if v else "0"
    elif v is not None:
        value = str(v)
    return Row(node.field, node.op, value, value2, negate, idx)


def from_query(node: Node) -> BuilderForm | None:
    """The builder form of a tree, or None when the tree is deeper than the form can show."""
    top = node if isinstance(node, Group) else Group("and", [node])
    groups: list[GroupForm] = []
    for gi, item in enumerate(top.items):
        negate = False
        inner = item
        if isinstance(inner, Not) and isinstance(inner.item, Group):
            negate, inner = True, inner.item
        if isinstance(inner, Group):
            rows = [_row_from(x, ri) for ri, x in enumerate(inner.items)]
            if any(r is None for r in rows):
                return None
            groups.append(GroupForm(inner.op, negate, rows, gi))  # type: ignore[arg-type]
        else:
            row = _row_from(inner, 0)
            if row is None:
                return None
            groups.append(GroupForm("and", False, [row], gi))
    return BuilderForm(top.op, groups)


def query_from_request(form: Mapping[str, Any]) -> Group | Node:
    """The tree a combined-search request carries: JSON in ``q`` wins over the builder rows."""
    raw = _get(form, "q")
    if raw:
        return decode(raw)
    return to_query(parse_form(form))


def empty_builder() -> BuilderForm:
    return BuilderForm("and", [GroupForm("and", False, [Row(idx=0)], 0)])


__all__ = ["BuilderForm", "GroupForm", "Row", "empty_builder", "from_query", "parse_form",
           "query_from_request", "to_query"]
