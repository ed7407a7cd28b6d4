"""schemathesis over the whole OpenAPI schema, signed in as each role: no server errors
(issue 9, "Done when").

Every operation of /schema/openapi.json gets requests generated from its schema (Hypothesis,
through schemathesis) and sent to the real app as each role, with that role's session cookie
and CSRF token; any answer >= 500 fails the test. In ``make test`` a short profile runs
(BINGAN_FUZZ_EXAMPLES, default 1 per operation and role); the full run, on demand:

    BINGAN_FUZZ_EXAMPLES=50 .venv/bin/pytest tests/test_api_fuzz.py -p no:xdist -s

prints the figures (requests, roles, operations, server errors).
"""

from __future__ import annotations

import os

import pytest
from webutil import ADMIN_SECRET, PASSWORD, csrf_token, login, login_admin, make_staff, web_client

EXAMPLES = int(os.environ.get("BINGAN_FUZZ_EXAMPLES", "1"))
ROLES = {"A0901": ["admin"], "X0901": ["secadmin"], "S0901": ["auditor"],
         "R0901": ["records"], "C0901": ["clerk"], "Q0901": ["qc"], "D0901": ["physician"]}


def _session_headers(rt, app, no: str) -> dict[str, str]:
    with web_client(rt, app=app) as c:
        if no in ("A0901", "X0901"):
            login_admin(c, no, ADMIN_SECRET)
        else:
            assert login(c, no).status_code in (302, 303)
        token = csrf_token(c)
        cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    return {"cookie": cookie, "x-csrftoken": token}


def test_openapi_no_server_errors_as_every_role(rt):
    # imported here: Hypothesis and schemathesis cost each collecting process seconds
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    from bingan.core.models import Role
    from bingan.core.web.app import create_app

    for no, roles in ROLES.items():
        make_staff(rt, no, roles, password=PASSWORD,
                   totp_secret=ADMIN_SECRET if no in ("A0901", "X0901") else None)
    with rt.sessions() as s, s.begin():  # the capabilities the demo gives its roles
        for role in s.query(Role):
            if role.name in ("records", "clerk", "qc", "physician"):
                role.permissions = sorted(set(role.permissions or []) | {"search.use"})
    app = create_app(rt)
    with web_client(rt, app=app) as c:  # the schema as integrators read it
        schema = schemathesis.openapi.from_dict(c.get("/schema/openapi.json").json())
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) >= 10
    errors: list[str] = []
    sent = 0
    headers = {no: _session_headers(rt, app, no) for no in ROLES}
    with web_client(rt, app=app) as c:  # the app's own test client, lifespan and all
        for op in ops:
            # Each generated request goes out as every role (with the same seed, each role
            # would be handed the same examples anyway); the role's session comes from its
            # headers only: the client's cookie jar is emptied before each request.
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def run(case) -> None:
                nonlocal sent
                for no, role_headers in headers.items():
                    kw = case.as_transport_kwargs(
                        base_url=str(c.base_url),
                        headers={**(case.headers or {}), **role_headers})
                    body = kw.pop("data", None)
                    if body is not None and not isinstance(body, (bytes, str)):
                        kw["data"] = body
                    elif body is not None:
                        kw["content"] = body
                    kw.pop("cookies", None)
                    c.cookies.clear()
                    r = c.request(**{k: v for k, v in kw.items()
                                     if k in ("method", "url", "headers", "params", "json",
                                              "data", "content", "files")},
                                  follow_redirects=False)
                    sent += 1
                    if r.status_code >= 500:
                        errors.append(f"{no} {case.method} {case.formatted_path} -> "  # noqa: B023
                                      f"{r.status_code}")

            run()
    print(f"\nschemathesis: {sent} requests, {len(ROLES)} roles, {len(ops)} operations, "
          f"{len(errors)} server errors")
    assert not errors, errors[:20]
