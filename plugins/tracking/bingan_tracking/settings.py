"""Settings of the tracking plugin (``[plugins.tracking]`` in plugins.toml): the hospital's
own state machine.

``states``: the states in their usual order, each with an optional overdue limit in working
days (``overdue_days``; 0: never overdue). ``initial``: the state of a record nobody moved yet
(a discharged record is waiting for recovery). ``transitions``: who may move a record from
which states to which (``roles``: role names; a staff member with any of them may). ``auto``:
which event of another plugin (``hooks.types.PAPER_EVENTS``) moves a record to which state,
from which states (a record in any other state stays where it is).

Example (plugins.toml)::

    [[plugins.tracking.states]]
    name = "待编码"
    overdue_days = 3
    [[plugins.tracking.transitions]]
    from = ["已回收"]
    to = "待编码"
    roles = ["records", "clerk"]
    [[plugins.tracking.auto]]
    event = "recovered"
    from = ["待回收"]
    to = "已回收"
"""

from __future__ import annotations

import msgspec

from bingan.hooks.types import PAPER_EVENTS

MAX_STATES = 40


class StateDef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    overdue_days: int = 0


class TransitionDef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    from_: list[str] = msgspec.field(name="from")
    to: str
    roles: list[str]
    label: str = ""


class AutoDef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event: str
    to: str
    from_: list[str] = msgspec.field(name="from")


def _s(name: str, days: int = 0) -> StateDef:
    return StateDef(name=name, overdue_days=days)


def _t(src: list[str], to: str, roles: list[str], label: str = "") -> TransitionDef:
    return TransitionDef(from_=src, to=to, roles=roles, label=label)


def _a(event: str, src: list[str], to: str) -> AutoDef:
    return AutoDef(event=event, from_=src, to=to)


RC = ["records", "clerk"]
DEFAULT_STATES = [
    _s("待回收", 2), _s("已回收", 1), _s("待编码", 3), _s("已编码"), _s("待翻拍", 5), _s("已翻拍"),
    _s("已质检", 5), _s("已装箱", 3), _s("已上架"), _s("借出", 3),
]
DEFAULT_TRANSITIONS = [
    _t(["待回收"], "已回收", RC, "签收"),
    _t(["已回收"], "待编码", RC, "送编码"),
    _t(["待编码"], "已编码", ["records"], "编码完成"),
    _t(["已编码"], "待翻拍", RC, "送翻拍"),
    _t(["待翻拍"], "已翻拍", RC, "翻拍完成"),
    _t(["已翻拍"], "已质检", ["qc", "records"], "质检通过"),
    _t(["已翻拍", "已质检"], "待翻拍", ["qc", "records"], "退回重拍"),
    _t(["已质检"], "已装箱", RC, "装箱"),
    _t(["已装箱"], "已上架", RC, "上架"),
    _t(["已装箱", "已上架"], "已质检", ["records"], "出箱"),
    _t(["已上架"], "借出", RC, "借出"),
    _t(["借出"], "已上架", RC, "归还"),
]
DEFAULT_AUTO = [
    _a("recovered", ["待回收"], "已回收"),
    _a("captured", ["已回收", "待编码", "已编码", "待翻拍"], "已翻拍"),
    _a("digitized", ["已回收", "待编码", "已编码", "待翻拍"], "已翻拍"),
    _a("boxed", ["已回收", "待编码", "已编码", "待翻拍", "已翻拍", "已质检"], "已装箱"),
    _a("shelved", ["已装箱"], "已上架"),
    _a("unboxed", ["已装箱", "已上架"], "已质检"),
    _a("lent", ["已上架", "已装箱"], "借出"),
    _a("returned", ["借出"], "已上架"),
]


class TrackingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.tracking]``."""

    states: list[StateDef] = msgspec.field(default_factory=lambda: list(DEFAULT_STATES))
    initial: str = "待回收"
    transitions: list[TransitionDef] = msgspec.field(
        default_factory=lambda: list(DEFAULT_TRANSITIONS))
    auto: list[AutoDef] = msgspec.field(default_factory=lambda: list(DEFAULT_AUTO))
    # workstation locations offered on the move page (free text is allowed too)
    locations: list[str] = msgspec.field(
        default_factory=lambda: ["病案室签收台", "编码室", "翻拍室", "质控室", "库房"])
    # one bulk move takes at most this many barcodes
    max_bulk: int = 2000
    # the records-in-a-state list shows this many rows per page
    page_size: int = 50

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        if not 1 <= len(names) <= MAX_STATES:
            raise ValueError(f"states: 1 to {MAX_STATES}")
        for n in names:
            if not n.strip() or len(n) > 16:
                raise ValueError(f"state name {n!r}: 1-16 characters")
        if len(set(names)) != len(names):
            raise ValueError("states: a name appears twice")
        for s in self.states:
            if not 0 <= s.overdue_days <= 366:
                raise ValueError(f"state {s.name}: overdue_days must be 0-366")
        known = set(names)
        if self.initial not in known:
            raise ValueError(f"initial state {self.initial!r} is not in states")
        for t in self.transitions:
            for n in [*t.from_, t.to]:
                if n not in known:
                    raise ValueError(f"transition to {t.to!r}: unknown state {n!r}")
            if not t.from_ or not t.roles:
                raise ValueError(f"transition to {t.to!r}: needs from states and roles")
            if t.to in t.from_:
                raise ValueError(f"transition to {t.to!r}: from and to are the same state")
        for a in self.auto:
            if a.event not in PAPER_EVENTS:
                raise ValueError(f"auto: unknown event {a.event!r} "
                                 f"(one of {', '.join(PAPER_EVENTS)})")
            for n in [*a.from_, a.to]:
                if n not in known:
                    raise ValueError(f"auto {a.event}: unknown state {n!r}")
        if not 1 <= self.max_bulk <= 10000:
            raise ValueError("max_bulk must be between 1 and 10000")
        if not 10 <= self.page_size <= 500:
            raise ValueError("page_size must be between 10 and 500")
