"""What every full-text backend plugin shares, so each plugin keeps only its engine's code.

The backends (plugins fulltext/Whoosh and tantivy) may not import each other; the analysis
they must agree on is core.cjk_text, and this module holds the rest they have in common:

* the input checks of the hooks (``check_pages``, ``check_paging``) and their limits;
* ``PageIndex``, the base of a backend's index class: the folder and its ``bingan.json``
  marker (engine and format, so an index of another format or tool is refused), the writer
  lock wait, the hit shaping (``hit``: the snippet is built only for the hits returned),
  ``replace_admission`` and the disk size;
* ``BackendSettings``: the settings every backend has (``path``, ``snippet_chars``,
  ``writer_timeout_s``), which a plugin's settings class extends;
* ``IndexRegistry``: the process-wide index per folder of a runtime, configured from the
  plugin's settings, and what the ``index_record``/``search_fulltext`` hooks do with it;
* ``command_group``: the ``bingan <plugin> stats|optimize`` commands.

A backend's index class implements ``replace_many``, ``search``, ``count``, ``optimize``,
``stats`` and ``close``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

import click
import msgspec

from bingan.hooks.types import AdmissionFilter, AdmissionRef, FulltextHit, PageRef, Runtime

from . import cjk_text

MAX_PAGE_CHARS = 100_000  # OCR of one page is a few thousand characters at most
MAX_LIMIT = 1000
MAX_OFFSET = 100_000


class IndexBusy(RuntimeError):
    """Another process held the index's writer lock for longer than the timeout."""


@dataclass(frozen=True)
class PageText:
    """One page to index."""

    page_id: int
    seq: int
    text: str


# -- the hooks' input ----------------------------------------------------------------------
def check_pages(admission: AdmissionRef, pages: list[tuple[PageRef, str]]) -> list[PageText]:
    """The pages to index, or ValueError/TypeError naming the first bad one (nothing is
    written then). Pages without text (None or blank) are left out of the index."""
    if not isinstance(admission, AdmissionRef):
        raise TypeError(f"index_record: admission must be an AdmissionRef, got "
                        f"{type(admission).__name__}")
    if not isinstance(pages, (list, tuple)):
        raise TypeError(f"index_record: pages must be a list of (PageRef, text), got "
                        f"{type(pages).__name__}")
    out: list[PageText] = []
    seen: set[int] = set()
    for i, item in enumerate(pages):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], PageRef)):
            raise TypeError(f"index_record: pages[{i}] is not a (PageRef, text) pair")
        page, text = item
        if page.admission_id != admission.id:
            raise ValueError(f"index_record: page {page.id} belongs to admission "
                             f"{page.admission_id}, not {admission.id}")
        if page.id in seen:
            raise ValueError(f"index_record: page {page.id} is listed twice")
        seen.add(page.id)
        if text is None:
            continue
        if not isinstance(text, str):
            raise TypeError(f"index_record: text of page {page.id} must be str, got "
                            f"{type(text).__name__}")
        if len(text) > MAX_PAGE_CHARS:
            raise ValueError(f"index_record: text of page {page.id} has {len(text)} characters "
                             f"(at most {MAX_PAGE_CHARS})")
        if text.strip():
            out.append(PageText(page.id, page.seq, text))
    return out


def check_paging(limit: int, offset: int) -> None:
    for name, value, top in (("limit", limit, MAX_LIMIT), ("offset", offset, MAX_OFFSET)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"search_fulltext: {name} must be an int, got {type(value).__name__}")
        low = 1 if name == "limit" else 0
        if not low <= value <= top:
            raise ValueError(f"search_fulltext: {name} must be between {low} and {top}, "
                             f"got {value}")


class BackendSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The settings of every full-text backend (``[plugins.<name>]``); a backend's settings
    class adds its own and calls ``super().__post_init__()``."""

    # Index folder; a relative path is under BINGAN_HOME. Empty: BINGAN_HOME/fulltext/<engine>.
    path: str = ""
    # Characters of page text around the first match in a hit's snippet.
    snippet_chars: int = 100
    # How long a writer waits for another process holding the index's writer lock.
    writer_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 20 <= self.snippet_chars <= 1000:
            raise ValueError("snippet_chars must be between 20 and 1000")
        if not 0 < self.writer_timeout_s <= 3600:
            raise ValueError("writer_timeout_s must be > 0 and <= 3600 seconds")


# -- the index base ------------------------------------------------------------------------
class PageIndex:
    """The page index of one engine at ``path`` (created on first use). Subclasses set
    ``ENGINE`` and ``FORMAT`` and implement the engine's part."""

    ENGINE = ""
    FORMAT = 1  # bump when the schema or analysis changes; an older index must be rebuilt

    def __init__(self, path: Path, *, snippet_chars: int = 100,
                 writer_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.snippet_chars = snippet_chars
        self.writer_timeout_s = writer_timeout_s
        self._ix: Any = None  # the engine's open index

    @property
    def marker(self) -> Path:
        return self.path / "bingan.json"

    def exists(self) -> bool:
        """Whether the index was created (cheap: no index file is opened)."""
        return self._ix is not None or self.marker.exists()

    def _foreign_index_here(self) -> bool:
        """Whether the folder holds an index of this engine that this plugin did not create."""
        raise NotImplementedError

    def _check_or_create_marker(self) -> None:
        """Refuse an index of another format or one we did not create; write the marker of a
        new index (atomically) before the engine creates its files."""
        if self.marker.exists():
            found = json.loads(self.marker.read_text()).get("format")
            if found != self.FORMAT:
                raise RuntimeError(
                    f"全文索引 {self.path} 的格式为 {found}，本版本需要 {self.FORMAT}，"
                    "旧索引不能再用，须重建：请删除该目录，再运行 bingan pageindex reindex --all "
                    "让页面索引重新发送已识别的页面文字（不会重新识别），见所用全文检索插件 README 的"
                    "“Rebuilding the index”")
            return
        if self._foreign_index_here():
            raise RuntimeError(f"全文索引 {self.path} 不是本插件建立的（缺少 bingan.json）")
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"engine": self.ENGINE, "format": self.FORMAT}))
        os.replace(tmp, self.marker)

    def _wait_for_writer(self, try_open: Callable[[], Any]) -> Any:
        """``try_open()`` returns a writer, or None while another process holds the lock;
        retried every 50 ms for up to ``writer_timeout_s``, then IndexBusy."""
        deadline = time.monotonic() + self.writer_timeout_s
        while True:
            w = try_open()
            if w is not None:
                return w
            if time.monotonic() >= deadline:
                raise IndexBusy(
                    f"全文索引 {self.path} 正被其他进程写入，等待 {self.writer_timeout_s:g} 秒后仍未释放")
            time.sleep(0.05)

    def hit(self, admission_id: int, page_id: int, score: float, text: str,
            clauses: list[cjk_text.Clause]) -> FulltextHit:
        """One result, its snippet around the first match of ``clauses`` in ``text``."""
        return FulltextHit(admission_id=admission_id, page_id=page_id, score=float(score),
                           snippet=cjk_text.snippet(text, clauses, self.snippet_chars))

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()) \
            if self.path.exists() else 0

    def replace_many(self, batch: Iterable[tuple[int, list[PageText]]], **bulk: Any) -> int:
        raise NotImplementedError

    def replace_admission(self, admission_id: int, pages: list[PageText]) -> int:
        """Replace every page of one admission (an empty list removes it from the index)."""
        return self.replace_many([(admission_id, pages)])

    def search(self, query: str, limit: int = 20, offset: int = 0,
               admissions: AdmissionFilter | None = None) -> list[FulltextHit]:
        """Pages matching ``query``, best first; with ``admissions`` only pages of the
        admissions it allows, filtered inside the engine's query (``limit`` and ``offset``
        count permitted pages only)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# -- one index per folder, per process -----------------------------------------------------
I = TypeVar("I", bound=PageIndex)


class IndexRegistry(Generic[I]):
    """The process-wide, shared index of each runtime's folder for one backend plugin.

    ``folder`` is the default folder under BINGAN_HOME/fulltext. Each time the index is asked
    for, every setting but ``path`` is copied onto the index attribute of the same name
    (settings can differ per runtime, the index object is shared per folder)."""

    def __init__(self, schema: type[BackendSettings], folder: str,
                 factory: Callable[[Path], I]) -> None:
        self.schema = schema
        self.folder = folder
        self.factory = factory
        self._indexes: dict[Path, I] = {}
        self._lock = threading.Lock()

    def index_path(self, rt) -> Path:
        configured = rt.settings(self.schema).path
        if not configured:
            return rt.home / "fulltext" / self.folder
        p = Path(configured)
        return p if p.is_absolute() else rt.home / p

    def index_for(self, rt: Runtime) -> I:
        """The index of ``rt``."""
        s = rt.settings(self.schema)
        path = self.index_path(rt)
        with self._lock:
            ix = self._indexes.get(path)
            if ix is None:
                ix = self._indexes[path] = self.factory(path)
            for name in s.__struct_fields__:
                if name != "path":
                    setattr(ix, name, getattr(s, name))
            return ix

    def close_all(self) -> None:
        """Close every open index (tests; a process exits without it)."""
        with self._lock:
            for ix in self._indexes.values():
                ix.close()
            self._indexes.clear()

    # what the hooks do: check the input, find the runtime's index, call it
    def index_record(self, rt: Runtime, admission: AdmissionRef,
                     pages: list[tuple[PageRef, str]]) -> int:
        """Replace what the index has for ``admission`` with ``pages``; pages written."""
        checked = check_pages(admission, pages)
        return self.index_for(rt).replace_admission(admission.id, checked)

    def search(self, rt: Runtime, query: str, limit: int, offset: int,
               admissions: AdmissionFilter | None = None) -> list[FulltextHit]:
        check_paging(limit, offset)
        if admissions is not None and not isinstance(admissions, AdmissionFilter):
            raise TypeError(f"search_fulltext: admissions must be an AdmissionFilter or None, "
                            f"got {type(admissions).__name__}")
        if admissions is not None and admissions.everything:
            admissions = None
        if admissions is not None and not admissions.exclude and not admissions.ids:
            return []  # nothing may be read: nothing to search
        return self.index_for(rt).search(query, limit, offset, admissions)


# -- the CLI -------------------------------------------------------------------------------
def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def command_group(name: str, help_text: str, registry: IndexRegistry,
                  optimize_help: str) -> click.Group:
    """``bingan <name> stats [--json]`` and ``bingan <name> optimize`` for a backend.

    There is no ``reindex``: the page texts live with the page index (pageindex plugin), which
    calls ``index_record`` for each admission; rebuilding the full-text index is its command.
    """
    from .cli import Ctx, pass_ctx

    @click.group(name, help=help_text)
    def group() -> None:
        pass

    @group.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
    @pass_ctx
    def stats(ctx: Ctx, as_json: bool) -> None:
        """显示全文索引的页数、段数与磁盘占用。"""
        s = registry.index_for(ctx.rt).stats()
        if as_json:
            click.echo(json.dumps(s, ensure_ascii=False))
            return
        lines = [f"引擎：{s['engine']}", f"位置：{s['path']}", f"已索引页数：{s['pages']}"]
        if "deleted" in s:
            lines.append(f"待清理的已删除页：{s['deleted']}")
        lines += [f"段数：{s['segments']}", f"磁盘占用：{human_size(s['bytes'])}"]
        click.echo("\n".join(lines))

    @group.command("optimize", help=optimize_help)
    @pass_ctx
    def optimize(ctx: Ctx) -> None:
        ix = registry.index_for(ctx.rt)
        if not ix.exists():
            click.echo("全文索引尚未建立，无需优化")
            return
        t0 = time.monotonic()
        ix.optimize()
        s = ix.stats()
        click.echo(f"全文索引已优化：{s['pages']} 页，{s['segments']} 段，{human_size(s['bytes'])}，"
                   f"用时 {time.monotonic() - t0:.1f} 秒")

    return group
