"""System credentials (core.apiclients) and the write-admissions API, on both databases:
registered by the CLI, hashed at rest, bearer token or OAuth2 client credentials, scopes,
revocation, every call audited under the client; cookies and bearer tokens never stand in for
each other."""

from __future__ import annotations

import base64
import functools
import operator

from bingan.core.models import Admission, ApiClient, ApiToken
from click.testing import CliRunner
from sqlalchemy import func, select
from webutil import events, login, make_staff, web_client

ADM = {
    "patient": {"mrn": "00200001", "name": "周敏", "sex": "F", "birth_date": "1975-06-02"},
    "admission_no": "ZY202603000001",
    "admitted_at": "2026-03-01T09:30:00",
    "discharged_at": "2026-03-08T10:00:00+08:00",
    "admit_department": "1001", "discharge_department": "心血管内科", "discharge_way": "1",
    "diagnoses": [{"code": "I20.000", "name": "不稳定型心绞痛", "kind": "main",
                   "admission_condition": "1"}],
    "signers": {"attending": "D0001"},
    "care_team": {"attending_physician": "D0001"},
}


def _cli(rt, *args):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    res = CliRunner().invoke(build_cli(rt), list(args), obj=obj)
    return res


def _setup(rt) -> dict[str, str]:
    from bingan.core.staff import add_department

    make_staff(rt, "D0001", ["physician"], name="陈志远")
    with rt.sessions() as s, s.begin():
        add_department(s, "1001", "心血管内科")
    out = {}
    for cid, scopes in (("his", ["admissions.write"]), ("cdr", ["documents.read"])):
        res = _cli(rt, "api-client", "add", cid, cid.upper(), *functools.reduce(operator.iadd, (["--scope", x]
                                                                   for x in scopes), []))
        assert res.exit_code == 0, res.output
        line = next(x for x in res.output.splitlines() if "Bearer 令牌" in x)
        out[cid] = line.split()[-1]
    return out


def test_clients_tokens_scopes_and_audit(rt):
    tokens = _setup(rt)
    his = tokens["his"]
    with rt.sessions() as s:  # the secret is not stored, only its keyed hash
        rows = s.scalars(select(ApiClient)).all()
        assert {r.client_id for r in rows} == {"his", "cdr"}
        assert all(his.split("_", 2)[2] not in (r.secret_hash or "") for r in rows)
    res = _cli(rt, "api-client", "list")
    assert "his" in res.output and "admissions.write" in res.output and "有效" in res.output
    assert _cli(rt, "api-client", "add", "x", "X", "--scope", "all").exit_code != 0

    with web_client(rt) as c:
        h = {"Authorization": f"Bearer {his}"}
        r = c.post("/api/admissions", json=ADM, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["visit_no"] == 1 and r.json()["created"] is True
        r = c.post("/api/admissions", json=ADM, headers=h)
        assert r.status_code == 200 and r.json()["changed"] is False
        # refused: every problem, nothing written
        bad = dict(ADM, admission_no="ZY202603000002", discharge_way="8",
                   diagnoses=[{"code": "心梗", "name": "x", "kind": "main"}])
        r = c.post("/api/admissions", json=bad, headers=h)
        assert r.status_code == 422
        assert {p["field"] for p in r.json()["problems"]} == {"discharge_way",
                                                              "diagnoses[0].code"}
        # a scope the client does not hold, a wrong token, no token
        assert c.post("/api/admissions", json=ADM, headers={
            "Authorization": f"Bearer {tokens['cdr']}"}).status_code == 403
        r = c.post("/api/admissions", json=ADM, headers={"Authorization": "Bearer bgn_his_x"})
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
        assert c.post("/api/admissions", json=ADM).status_code == 401
        # a bearer token does not open the browser's pages
        assert c.get("/api/me", headers=h).status_code == 401

    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 1
    calls = events(rt, "api.call")
    assert [e.staff_no for e in calls] == ["api:his"] * 3 + ["api:cdr", "api:his"]
    assert '"status": 422' in calls[2].detail and calls[2].outcome == "failed"
    assert [e.admission_no for e in events(rt, "admission.upsert")] == ["ZY202603000001"] * 2
    assert events(rt, "admission.upsert")[0].staff_no == "api:his"
    assert len(events(rt, "admission.refused")) == 1 and len(events(rt, "api.auth")) == 1

    # revoked: the token stops working at once
    assert _cli(rt, "api-client", "revoke", "his").exit_code == 0
    with web_client(rt) as c:
        assert c.post("/api/admissions", json=ADM, headers=h).status_code == 401


def test_oauth_client_credentials(rt):
    tokens = _setup(rt)
    secret = tokens["his"].split("_", 2)[2]
    with web_client(rt) as c:
        basic = base64.b64encode(f"his:{secret}".encode()).decode()
        r = c.post("/oauth/token", data={"grant_type": "client_credentials"},
                   headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "admissions.write" and r.headers["cache-control"] == "no-store"
        h = {"Authorization": f"Bearer {body['access_token']}"}
        assert c.post("/api/admissions", json=ADM, headers=h).status_code == 201
        # form credentials, a wrong secret, a scope not granted, another grant type
        r = c.post("/oauth/token", data={"grant_type": "client_credentials",
                                         "client_id": "his", "client_secret": secret + "x"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = c.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "his",
                                         "client_secret": secret, "scope": "documents.read"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
        r = c.post("/oauth/token", data={"grant_type": "password", "client_id": "his"})
        assert r.json()["error"] == "unsupported_grant_type"
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(ApiToken)) == 1
        # revocation ends issued tokens too
        assert _cli(rt, "api-client", "revoke", "his").exit_code == 0
        assert c.post("/api/admissions", json=ADM, headers=h).status_code == 401
    assert [e.outcome for e in events(rt, "api.token")] == ["ok", "failed"]


def test_a_staff_session_cannot_call_the_system_api(rt):
    """The browser's cookie session (even with its CSRF token) is not a system credential."""
    from webutil import csrf_token

    _setup(rt)
    make_staff(rt, "R0001", ["records"])
    with web_client(rt) as c:
        assert login(c, "R0001").status_code in (302, 303)
        assert c.get("/api/me").status_code == 200
        r = c.post("/api/admissions", json=ADM, headers={"x-csrftoken": csrf_token(c)})
        assert r.status_code == 401
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 0
