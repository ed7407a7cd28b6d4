"""A ``bingan worker`` process for tests/test_worker.py: the real worker loop (``core.worker``)
with a test task kind, ``test.slow``, whose effect can be counted.

Run as ``python worker_child.py`` with WORKER_TEST_DIR (where the task writes), WORKER_TEST_DB
(database URL), WORKER_TEST_HOME and WORKER_TEST_LEASE (seconds) in the environment.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import types
from pathlib import Path

from bingan.hooks import hookimpl


def slow(payload):
    """Sleeps ``seconds`` (in steps, so SIGSTOP/SIGKILL land mid-task), then records its
    result once: the result file is created exclusively, so a second run (after a crash or a
    lost lease) finds it and adds nothing; ``effects.log`` counts real effects."""
    out = Path(os.environ["WORKER_TEST_DIR"])
    n = payload["n"]
    with open(out / "starts.log", "a", encoding="utf-8") as f:
        f.write(f"{n} {os.getpid()}\n")
    end = time.monotonic() + float(payload.get("seconds", 0))
    while time.monotonic() < end:
        time.sleep(0.05)
    try:
        fd = os.open(out / f"result-{n}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # an earlier run made it: idempotent
        return {"n": n, "pid": os.getpid(), "again": True}
    with os.fdopen(fd, "w") as f:
        json.dump({"n": n, "pid": os.getpid()}, f)
    with open(out / "effects.log", "a", encoding="utf-8") as f:
        f.write(f"{n} {os.getpid()}\n")
    return {"n": n, "pid": os.getpid()}


plugin = types.ModuleType("worker_test_plugin")
plugin.register_task_handlers = hookimpl(lambda: {"test.slow": slow})  # type: ignore[attr-defined]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from support import make_config

    from bingan.core.runtime import build_runtime
    from bingan.core.worker import run_process

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(process)d %(levelname)s %(message)s")
    cfg = make_config(Path(os.environ["WORKER_TEST_HOME"]), os.environ["WORKER_TEST_DB"],
                      enabled=[], task_lease_seconds=int(os.environ["WORKER_TEST_LEASE"]))
    rt = build_runtime(cfg, extra_modules=[plugin])
    print("ready", flush=True)
    run_process(rt, poll_seconds=0.1)
    rt.close()


if __name__ == "__main__":
    main()
