"""The record_digitized push against a real HTTP server on this machine: the DocumentReference
is POSTed as a conditional create, a refusal (503) is retried through the durable task queue,
each attempt audited; the same version is never queued twice."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import Admission, AuditEvent, Task
from bingan.core.records import to_ref

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fhir_world import MRN_SYSTEM, admit, document, hospital, validate  # noqa: E402


class Cdr:
    """A FHIR server stand-in process part: a real HTTP server answering from a script."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.received: list[tuple[str, dict[str, str], dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append((self.path, dict(self.headers), body))
                status = outer.answers.pop(0) if outer.answers else 201
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", "/fhir/DocumentReference/cdr-1/_history/1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fhir"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cdr():
    server = Cdr([503])
    yield server
    server.close()


@pytest.fixture
def push_rt(db_url, tmp_path, cdr):
    from bingan.core.runtime import build_runtime, set_current
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url)
    cfg.plugin_settings["fhir"] = {"base_url": "https://bingan.example", "push_url": cdr.url,
                                   "push_token": "s3cret", "push_max_attempts": 3}
    rt = build_runtime(cfg)
    yield rt
    rt.close()
    set_current(None)


def _tasks(rt):
    with rt.sessions() as s:
        rows = list(s.scalars(select(Task).where(Task.kind == "fhir.push")))
        for r in rows:
            s.expunge(r)
        return rows


def test_push_retried_until_the_cdr_takes_it(push_rt, cdr):
    rt = push_rt
    hospital(rt)
    aid = admit(rt, "00100001", "ZY202603000001", 1)
    doc_id, _pdf = document(rt, aid, 2)
    with rt.sessions() as s:
        ref = to_ref(s.get(Admission, aid))
    rt.pm.hook.record_digitized(admission=ref, document_version=1, rt=rt)
    rt.pm.hook.record_digitized(admission=ref, document_version=1, rt=rt)  # announced twice
    (task,) = _tasks(rt)

    tasks.run_until_idle(rt, kinds=["fhir.push"])
    (task,) = _tasks(rt)
    assert (task.status, task.attempts) == ("queued", 1) and "HTTP 503" in task.last_error
    assert len(cdr.received) == 1

    time.sleep(max(0.0, (task.run_after - task.run_after.now(task.run_after.tzinfo))
                   .total_seconds()) + 0.2)  # the queue's back-off (2 s after one attempt)
    tasks.run_until_idle(rt, kinds=["fhir.push"])
    (task,) = _tasks(rt)
    assert (task.status, task.attempts) == ("done", 2)
    assert task.result["location"] == "/fhir/DocumentReference/cdr-1/_history/1"

    assert len(cdr.received) == 2
    path, headers, body = cdr.received[-1]
    assert path == "/fhir/DocumentReference"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/fhir+json"
    uid = body["masterIdentifier"]["value"]
    assert headers["If-None-Exist"] == f"identifier=urn:ietf:rfc:3986|{uid}"
    assert cdr.received[0][2] == body  # the retry sends the same document
    validate(body)
    assert "id" not in body and body["status"] == "current"
    assert body["subject"]["identifier"] == {"system": MRN_SYSTEM, "value": "00100001"}
    assert body["content"][0]["attachment"]["url"] == \
        f"https://bingan.example/fhir/Binary/pdf-{doc_id}"
    with rt.sessions() as s:
        evs = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "fhir.push")
                             .order_by(AuditEvent.seq)))
    assert [(e.outcome, e.mrn, e.admission_no) for e in evs] == [
        ("failed", "00100001", "ZY202603000001"), ("ok", "00100001", "ZY202603000001")]


def test_push_settings_are_checked():
    from bingan.core.config import ConfigError, validate_settings
    from bingan_fhir.settings import FhirSettings

    with pytest.raises(ConfigError, match="base_url"):
        validate_settings("plugins.fhir", FhirSettings, {"push_url": "http://cdr.local/fhir"})
    with pytest.raises(ConfigError, match="http"):
        validate_settings("plugins.fhir", FhirSettings, {"base_url": "ftp://x"})
