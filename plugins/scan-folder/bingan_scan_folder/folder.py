"""The hot folder: a folder that scanner software saves into, watched and emptied into capture."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bingan.core import audit
from bingan_capture.ingest import CaptureError, receive
from bingan_scan_folder.settings import FolderSettings

log = logging.getLogger("bingan.scan_folder")

SKIP_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".error.txt", ".lock")
RESERVED = ("done", "rejected")


@dataclass
class FolderResult:
    path: Path
    ok: bool
    message: str
    capture_id: int | None = None
    duplicate: bool = False


class HotFolder:
    """Watches a folder that scanner software saves into.

    A file is taken only when its size and modification time have not changed for
    ``stable_seconds`` (the scanner may still be writing it). After it is stored it moves to
    ``DIR/done``; a refused file moves to ``DIR/rejected`` with ``<name>.error.txt`` saying
    why. A file in a sub-folder named by an admission number (``DIR/ZY.../x.tif``) belongs to
    that record; other files are identified by barcode. Crash-safe: a file is moved only
    after its capture committed, and taking the same file again is idempotent.
    """

    def __init__(self, rt, root: str | os.PathLike, *, batch_id: int | None = None,
                 by: str | None = None, stable_seconds: float | None = None) -> None:
        self.rt = rt
        self.root = Path(root)
        self.batch_id = batch_id
        self.by = by
        settings = rt.settings(FolderSettings)
        self.stable = settings.stable_seconds if stable_seconds is None else stable_seconds
        self.seen: dict[Path, tuple[int, int, float]] = {}
        if not self.root.is_dir():
            raise CaptureError(f"目录 {self.root} 不存在")

    def candidates(self) -> list[Path]:
        out: list[Path] = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith((".", "~")):
                continue
            if entry.is_dir():
                if entry.name in RESERVED:
                    continue
                out.extend(p for p in sorted(entry.iterdir()) if self._wanted(p))
            elif self._wanted(entry):
                out.append(entry)
        return out

    @staticmethod
    def _wanted(p: Path) -> bool:
        return p.is_file() and not p.name.startswith((".", "~")) and \
            not p.name.lower().endswith(SKIP_SUFFIXES)

    def stable_files(self, now: float | None = None) -> list[Path]:
        """Observe the folder; return the files unchanged for ``stable_seconds``."""
        now = time.monotonic() if now is None else now
        ready, current = [], {}
        for p in self.candidates():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            prev = self.seen.get(p)
            first = prev[2] if prev and prev[:2] == sig else now
            current[p] = (*sig, first)
            if now - first >= self.stable and (prev and prev[:2] == sig or self.stable == 0):
                ready.append(p)
        self.seen = current
        return ready

    def _move(self, p: Path, where: str) -> Path:
        rel = p.relative_to(self.root)
        dest = self.root / where / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest = dest.with_name(f"{dest.stem}-{dt.datetime.now():%Y%m%d%H%M%S%f}{dest.suffix}")
        os.replace(p, dest)
        return dest

    def take(self, p: Path) -> FolderResult:
        rel = p.relative_to(self.root)
        admission = rel.parts[0] if len(rel.parts) > 1 else None
        try:
            data = p.read_bytes()
        except OSError as exc:  # vanished or unreadable: try again on the next pass
            return FolderResult(p, False, f"无法读取：{exc}")
        try:
            who = audit.Actor(staff_no=self.by) if self.by else audit.Actor.cli()
            with self.rt.sessions() as s, s.begin():
                got = receive(s, self.rt, data, p.name, "hot_folder", admission_no=admission,
                              batch_id=self.batch_id, by=who.staff_no, actor=who)
        except CaptureError as exc:
            dest = self._move(p, "rejected")
            dest.with_name(dest.name + ".error.txt").write_text(
                f"{dt.datetime.now():%Y-%m-%d %H:%M:%S} 拒收 {rel}：{exc}\n", encoding="utf-8")
            return FolderResult(p, False, str(exc))
        self._move(p, "done")
        msg = (f"已接收过（采集 #{got.capture_id}）" if got.duplicate
               else f"已接收 采集 #{got.capture_id}，{got.frames} 页")
        return FolderResult(p, True, msg, got.capture_id, got.duplicate)

    def run_once(self) -> list[FolderResult]:
        """Observe, wait until files had time to settle, take the stable ones."""
        self.stable_files()
        if self.stable:
            time.sleep(self.stable)
        return [self.take(p) for p in self.stable_files()]

    def run_forever(self, poll: float, on_result=None, stop=None) -> None:
        while stop is None or not stop.is_set():
            try:
                for p in self.stable_files():
                    r = self.take(p)
                    if on_result:
                        on_result(r)
            except Exception:  # e.g. the database is briefly away: keep watching, retry
                log.exception("hot folder %s: pass failed; retrying", self.root)
                time.sleep(poll * 5)
            time.sleep(poll)
