"""Every audit action written by core or a plugin of this repo has a Chinese label.

The audit pages show ``core.audit.ACTION_LABELS`` plus whatever the plugins return from the
``audit_action_labels`` hook; an action without a label shows as its raw code (``qc.lookup``),
which a hospital auditor cannot read. This guard finds the actions by reading the sources and
fails when one of them has no label with every installed plugin enabled.

How the scan finds actions (static, with ``ast``; nothing is imported or run):

1. Files: every ``*.py`` under ``core/``, ``plugins/*/`` and ``integrations/*/`` except folders
   named ``tests`` (test helpers write made-up actions on purpose).
2. Writers: a call to ``record`` of core's audit module, however it was imported in that file
   (``from core import audit [as x]`` then ``x.record(...)``, ``import core.audit as x``,
   ``core.audit.record(...)``, ``from core.audit import record [as y]`` then ``y(...)``). The
   action is the third positional argument or the ``action=`` keyword.
3. Forwarders: a function whose action argument (to a writer or to another forwarder) is,
   as a whole, one of its own parameters -- e.g. search's ``record_failure(rt, action, ...)``
   or reading's ``_decide_view(..., event, ...)``. Calls to it (by name, bare or as an
   attribute) then count as writers, with the action at that parameter's position or keyword;
   this is repeated until no new forwarder appears. A forwarder defined in core is matched
   everywhere; one defined in a plugin only inside that plugin (plugins never import each
   other, so that is where its callers are).
4. Values: a string literal; ``a + b``; ``x if c else y``; an f-string; a local or module-level
   name assigned string values (every assignment counts). A name used inside an f-string or a
   concatenation is expanded from a membership test on it in the same function
   (``if kind not in ("sample", "spot")``) against a literal tuple/list/set or a module-level
   constant holding one (``USER_OPS``).
5. Anything else (a loop variable, a call, ``*args`` hiding the action) is *unresolved*: it
   must match a pattern in ``RUNTIME_EXPANSIONS`` below, which turns it into actions of the
   running system (``access.{action}`` for each action registered through
   ``register_actions``); an unresolved action with no entry fails the guard, so a new kind of
   dynamic action cannot slip past silently.

The guard then asks for a label containing Chinese for every action found, from
``ACTION_LABELS`` plus the hook with every installed plugin enabled (fixture ``rt``), and for
no label naming an action nothing writes (a typo or a leftover). Run this file to list a
missing label; the scanner itself is checked on a toy tree and against known actions.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support import REPO

#: unresolved action (its f-string/concatenation with ``{}`` for each unknown part) -> the
#: actions it stands for, computed from a runtime with every plugin enabled
RUNTIME_EXPANSIONS: dict[str, Callable[..., set[str]]] = {
    "access.{}": lambda rt: {f"access.{a}" for a in _registered_actions(rt)},
}


def _registered_actions(rt) -> set[str]:
    from bingan.core.permissions import registered_actions

    return set(registered_actions(rt))


# ============================================================================================
# The scanner
# ============================================================================================


@dataclass(frozen=True)
class Site:
    """One place that writes an audit action."""

    path: str
    line: int
    actions: frozenset[str] = frozenset()  # resolved actions
    pattern: str | None = None  # unresolved: the action's shape, ``{}`` for unknown parts

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class _Module:
    path: Path
    rel: str
    scope: str  # "core" or the plugin/integration folder name
    tree: ast.Module
    writer_names: set[str] = field(default_factory=set)  # bare names bound to audit.record
    module_names: set[str] = field(default_factory=set)  # names bound to core.audit
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)


@dataclass(frozen=True)
class _Forwarder:
    name: str
    scope: str
    index: int  # position of the action in a call's arguments (a method's self not counted)
    param: str


def source_files(root: Path = REPO) -> Iterator[tuple[Path, str]]:
    """(file, scope) for every source file the scan covers."""
    for py in sorted((root / "core").rglob("*.py")):
        if "tests" not in py.relative_to(root).parts:
            yield py, "core"
    for base in ("plugins", "integrations"):
        for folder in sorted(p for p in (root / base).glob("*") if p.is_dir()):
            for py in sorted(folder.rglob("*.py")):
                parts = py.relative_to(folder).parts
                if "tests" not in parts and not any(p.endswith(".egg-info") for p in parts):
                    yield py, folder.name


def _parse(path: Path, root: Path, scope: str) -> _Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    mod = _Module(path, path.relative_to(root).as_posix(), scope, tree)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            mod.parents[child] = node
        if isinstance(node, ast.ImportFrom) and node.module == "bingan.core":
            mod.module_names |= {a.asname or a.name for a in node.names if a.name == "audit"}
        elif isinstance(node, ast.ImportFrom) and node.module == "bingan.core.audit":
            mod.writer_names |= {a.asname or a.name for a in node.names if a.name == "record"}
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "bingan.core.audit" and a.asname:
                    mod.module_names.add(a.asname)
    return mod


def _is_core_audit(mod: _Module, node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in mod.module_names
    return (isinstance(node, ast.Attribute) and node.attr == "audit"
            and isinstance(node.value, ast.Name) and node.value.id == "core")


def _called_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _action_arg(call: ast.Call, index: int, param: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == param:
            return kw.value
    args = call.args[:index + 1]
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in args):
        return call.args[index]
    return None


def _enclosing_function(mod: _Module, node: ast.AST):
    while node in mod.parents:
        node = mod.parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _params(fn) -> list[str]:
    a = fn.args
    return [p.arg for p in (*a.posonlyargs, *a.args)] + [p.arg for p in a.kwonlyargs]


def _str_collection(node: ast.expr | None) -> set[str] | None:
    if isinstance(node, ast.Call) and _called_name(node) in ("frozenset", "set", "tuple") \
            and len(node.args) == 1:
        node = node.args[0]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return {e.value for e in node.elts}
    return None


def _assignments(body: ast.AST, name: str, *, top_level: bool) -> list[ast.expr]:
    nodes = ast.iter_child_nodes(body) if top_level else ast.walk(body)
    out = []
    for n in nodes:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                             for t in n.targets):
            out.append(n.value)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) \
                and n.target.id == name and n.value is not None:
            out.append(n.value)
    return out


class _Unresolved(Exception):
    pass


class _Resolver:
    """Turns an action expression into the set of strings it can take."""

    def __init__(self, mod: _Module, fn):
        self.mod, self.fn = mod, fn

    def values(self, node: ast.expr, *, part: bool = False) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return {a + b for a in self.values(node.left, part=True)
                    for b in self.values(node.right, part=True)}
        if isinstance(node, ast.IfExp):
            return self.values(node.body, part=part) | self.values(node.orelse, part=part)
        if isinstance(node, ast.JoinedStr):
            out = {""}
            for v in node.values:
                if isinstance(v, ast.FormattedValue):
                    if v.conversion != -1 or v.format_spec is not None:
                        raise _Unresolved
                    vals = self.values(v.value, part=True)
                else:
                    vals = self.values(v, part=True)
                out = {a + b for a in out for b in vals}
            return out
        if isinstance(node, ast.Name):
            return self._name(node.id, part)
        raise _Unresolved

    def _name(self, name: str, part: bool) -> set[str]:
        if part and self.fn is not None:
            allowed = self._membership(name)
            if allowed:
                return allowed
        sources = []
        if self.fn is not None:
            sources = _assignments(self.fn, name, top_level=False)
        if not sources:
            sources = _assignments(self.mod.tree, name, top_level=True)
        if not sources:
            raise _Unresolved
        out: set[str] = set()
        for s in sources:
            out |= self.values(s, part=part)
        return out

    def _membership(self, name: str) -> set[str] | None:
        """Values allowed by ``name in (...)`` / ``name not in (...)`` in the function."""
        for n in ast.walk(self.fn):
            if (isinstance(n, ast.Compare) and isinstance(n.left, ast.Name)
                    and n.left.id == name and len(n.ops) == 1
                    and isinstance(n.ops[0], (ast.In, ast.NotIn))):
                target = n.comparators[0]
                found = _str_collection(target)
                if found is None and isinstance(target, ast.Name):
                    for value in _assignments(self.mod.tree, target.id, top_level=True):
                        found = _str_collection(value)
                        if found:
                            break
                if found:
                    return found
        return None


def _pattern(node: ast.expr) -> str:
    """The shape of an unresolved action: literal parts kept, anything else ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _pattern(node.left) + _pattern(node.right)
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return "{}"


def scan(root: Path = REPO) -> list[Site]:
    """Every audit-writing site in the sources under ``root`` (see the module docstring)."""
    mods = [_parse(p, root, scope) for p, scope in source_files(root)]
    forwarders: set[_Forwarder] = set()
    while True:
        calls = list(_writer_calls(mods, forwarders))
        new = set()
        for mod, call, arg in calls:
            fn = _enclosing_function(mod, call)
            if fn is None or not isinstance(arg, ast.Name):
                continue
            params = _params(fn)
            if arg.id in params and not _assignments(fn, arg.id, top_level=False):
                index = params.index(arg.id)
                if index >= len(fn.args.posonlyargs) + len(fn.args.args):
                    index = 10_000  # keyword-only: matched by keyword
                elif _is_method(mod, fn):
                    index -= 1  # obj.method(...) does not pass self
                new.add(_Forwarder(fn.name, mod.scope, index, arg.id))
        if new <= forwarders:
            break
        forwarders |= new
    forwarded = {(f.scope, f.name, f.param) for f in forwarders}
    sites = []
    for mod, call, arg in calls:
        fn = _enclosing_function(mod, call)
        if fn is not None and isinstance(arg, ast.Name) \
                and (mod.scope, fn.name, arg.id) in forwarded:
            continue  # reported at its callers
        line = arg.lineno if arg is not None else call.lineno
        if arg is None:
            sites.append(Site(mod.rel, line, pattern="{}"))
            continue
        try:
            sites.append(Site(mod.rel, line, frozenset(_Resolver(mod, fn).values(arg))))
        except _Unresolved:
            sites.append(Site(mod.rel, line, pattern=_pattern(arg)))
    return sites


def _writer_calls(mods: list[_Module], forwarders: set[_Forwarder]):
    """(module, call, action argument) for every call to a writer or a known forwarder."""
    for mod in mods:
        visible = [f for f in forwarders if f.scope in ("core", mod.scope)]
        for call in ast.walk(mod.tree):
            if not isinstance(call, ast.Call):
                continue
            f = call.func
            if (isinstance(f, ast.Attribute) and f.attr == "record"
                    and _is_core_audit(mod, f.value)) \
                    or (isinstance(f, ast.Name) and f.id in mod.writer_names):
                yield mod, call, _action_arg(call, 2, "action")
                continue
            name = _called_name(call)
            for fw in visible:
                if fw.name == name:
                    yield mod, call, _action_arg(call, fw.index, fw.param)


def _is_method(mod: _Module, fn) -> bool:
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
    return isinstance(mod.parents.get(fn), ast.ClassDef) and not static


def expand(sites: list[Site], rt) -> tuple[set[str], list[Site]]:
    """All actions, with unresolved sites expanded at runtime; and the sites nobody expands."""
    actions: set[str] = set()
    unknown: list[Site] = []
    for s in sites:
        if s.pattern is None:
            actions |= s.actions
        elif s.pattern in RUNTIME_EXPANSIONS:
            actions |= RUNTIME_EXPANSIONS[s.pattern](rt)
        else:
            unknown.append(s)
    return actions, unknown


def all_labels(rt) -> dict[str, str]:
    """The labels the audit pages use (core.web.templating does the same merge)."""
    from bingan.core.audit import ACTION_LABELS

    labels = dict(ACTION_LABELS)
    for group in rt.pm.hook.audit_action_labels():
        labels.update(group or {})
    return labels


# ============================================================================================
# The guard
# ============================================================================================

HAN = re.compile(r"[\u4e00-\u9fff]")


def label_problems(rt) -> list[str]:
    """Why the audit pages would show a raw code somewhere (empty when every action is named)."""
    installed = {name for name, _ in rt.pm.list_name_plugin()}
    folders = {p.name for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").exists()}
    problems = [f"plugins not enabled in the runtime: {sorted(folders - installed)}"
                ] if not folders <= installed else []
    actions, unknown = expand(scan(), rt)
    if unknown:
        problems.append(
            "audit actions the scan cannot resolve; make them literal or add their pattern to "
            "RUNTIME_EXPANSIONS: " + ", ".join(f"{s.pattern!r} at {s.where()}" for s in unknown))
    labels = all_labels(rt)
    missing = sorted(a for a in actions if a not in labels)
    if missing:
        problems.append(f"audit actions without a Chinese label: {missing}; add them to the "
                        "plugin's audit_action_labels hookimpl (core: core.audit.ACTION_LABELS)")
    bad = sorted((a, labels[a]) for a in actions if a in labels and not HAN.search(labels[a]))
    if bad:
        problems.append(f"labels that are not Chinese: {bad}")
    return problems


def test_every_audit_action_has_a_chinese_label(rt):
    problems = label_problems(rt)
    assert not problems, "\n".join(problems)


def test_no_label_names_an_action_nobody_writes(rt):
    """A label for an action the sources never write is a typo or a leftover."""
    actions, _ = expand(scan(), rt)
    stale = sorted(set(all_labels(rt)) - actions)
    assert not stale, f"labels for actions no source writes: {stale}"


def test_the_scan_finds_every_kind_of_site():
    """Known actions of each kind, so a scanner that finds nothing cannot pass the guard."""
    sites = scan()
    found = set().union(*(s.actions for s in sites))
    assert {
        "capture.receive", "archive.export", "pageindex.correct", "qc.lookup",  # literals
        "search.simple", "search.combined",  # through service.structured (a forwarder)
        "record.view", "record.page_view",  # through reading's _decide_view / _unknown
        "qc.inspect.sample", "qc.inspect.spot",  # f-string, `kind not in (...)`
        "admin.user.totp_reset", "admin.user.unlock",  # f-string, module constant USER_OPS
        "admin.user.enable", "admin.user.disable",  # "..." + (a if c else b)
    } <= found
    assert {s.pattern for s in sites if s.pattern} == {"access.{}"}
    scopes = {s.path.split("/")[1] if s.path.startswith("plugins/") else "core" for s in sites}
    assert {"core", "capture", "qc", "archive", "search", "pageindex", "reading"} <= scopes


_TOY = {
    "core/audit.py": "def record(session, rt, action, **kw): ...\n",
    "core/thing.py": (
        "from bingan.core import audit as au\n"
        "KINDS = frozenset({'a', 'b'})\n"
        "def f(s, rt):\n"
        "    au.record(s, rt, 'toy.literal')\n"
        "    au.record(s, rt, action='toy.keyword')\n"
        "def helper(s, rt, what, *, note=''):\n"
        "    au.record(s, rt, what, detail={'note': note})\n"
        "def g(s, rt, kind):\n"
        "    if kind not in KINDS:\n"
        "        raise ValueError(kind)\n"
        "    au.record(s, rt, f'toy.kind.{kind}')\n"
        "    helper(s, rt, 'toy.helped')\n"
        "def h(s, rt, x):\n"
        "    au.record(s, rt, 'toy.' + x)\n"
    ),
    "plugins/one/bingan_one/a.py": (
        "from bingan.core.audit import record as write\n"
        "from bingan.core import thing\n"
        "def mine(rt, event):\n"
        "    with rt.s() as s:\n"
        "        write(s, rt, event)\n"
        "def run(rt, flag):\n"
        "    mine(rt, 'one.x' if flag else 'one.y')\n"
        "    thing.helper(None, rt, what='one.via_core')\n"
        "    ev = 'one.local'\n"
        "    write(None, rt, ev)\n"
    ),
    "plugins/one/tests/test_a.py": (
        "from bingan.core import audit\n"
        "def test_x():\n"
        "    audit.record(None, None, 'one.test_only')\n"
    ),
    "plugins/two/bingan_two/b.py": (
        "def mine(rt, event):\n"  # same name as plugin one's forwarder: not one of its callers
        "    return event\n"
        "def run(rt):\n"
        "    mine(rt, 'two.not_audited')\n"
    ),
}


def test_scanner_rules_on_a_toy_tree(tmp_path):
    for rel, text in _TOY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / "integrations").mkdir()
    sites = scan(tmp_path)
    found = set().union(*(s.actions for s in sites))
    assert found == {"toy.literal", "toy.keyword", "toy.kind.a", "toy.kind.b", "toy.helped",
                     "one.x", "one.y", "one.via_core", "one.local"}
    assert [(s.path, s.pattern) for s in sites if s.pattern] == [("core/thing.py", "toy.{}")]


def test_the_guard_fails_when_a_label_is_missing(rt, monkeypatch):
    """Drop one plugin label: the guard names exactly that action."""
    assert label_problems(rt) == []
    impl = next(i for i in rt.pm.hook.audit_action_labels.get_hookimpls()
                if "capture.receive" in (i.function() or {}))
    original = impl.function
    monkeypatch.setattr(impl, "function",
                        lambda: {k: v for k, v in original().items() if k != "capture.receive"})
    assert label_problems(rt) == [
        "audit actions without a Chinese label: ['capture.receive']; add them to the "
        "plugin's audit_action_labels hookimpl (core: core.audit.ACTION_LABELS)"]
