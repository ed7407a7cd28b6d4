"""System credentials: API clients registered by an administrator, with scopes.

Another hospital system (HIS, EMR, CDR, 360 view) calls the JSON and FHIR APIs as an API client,
never with a staff member's browser session. Each client has a ``client_id`` and a secret shown
once when it is registered (``bingan api-client add``); the database keeps an HMAC-SHA256 of the
secret keyed with the installation's secret key, so a copy of the database yields no working
credential. A client authenticates either

- with the secret itself as a bearer token: ``Authorization: Bearer bgn_<client_id>_<secret>``, or
- through the OAuth2 client-credentials grant (``POST /oauth/token``, RFC 6749 4.4), which
  returns a short-lived access token (hash stored, expires after ``TOKEN_TTL``).

Revoking a client ends every token of it at once. Scopes (``SCOPES``) say what it may do; a
route declares the scope it needs with ``opt={"api_scope": ...}`` and accepts nothing but a
client's bearer token, so the browser's cookie session (with its CSRF check) and the system
credentials never stand in for each other. Every call is audited under ``api:<client_id>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from bingan.core import audit
from bingan.core.models import ApiClient, ApiToken, utcnow
from bingan.hooks.types import StaffRef
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

SCOPES: dict[str, str] = {
    "documents.read": "读取病案文档（FHIR：Patient、Encounter、DocumentReference、Binary）",
    "admissions.write": "写入住院登记与病案首页（经统一校验入口）",
}
TOKEN_TTL = dt.timedelta(hours=1)
CLIENT_ROLE = "api_client"  # the role an API client's StaffRef carries
PREFIX = "bgn_"
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")


class ApiClientError(ValueError):
    """Bad client input (unknown scope, duplicate id) or a refused credential."""


@dataclass(frozen=True)
class ClientIdentity:
    """An authenticated API client for one request."""

    id: int
    client_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor_name(self) -> str:
        return f"api:{self.client_id}"

    def staff_ref(self) -> StaffRef:
        """How the access policy sees the client: no staff id (grants never match), the
        ``api_client`` role and its scopes as permissions."""
        return StaffRef(id=0, staff_no=self.actor_name, name=self.name, department_code=None,
                        roles=frozenset({CLIENT_ROLE}), permissions=self.scopes)


def _hash(rt, secret: str) -> str:
    return hmac.new(rt.secret_key, b"api-client:" + secret.encode(), hashlib.sha256).hexdigest()


def add_client(session: Session, rt, client_id: str, name: str, scopes: list[str],
               by: audit.Actor) -> tuple[ApiClient, str]:
    """Register a client; returns it and its bearer token (shown once, never stored)."""
    if not _CLIENT_ID.match(client_id):
        raise ApiClientError("客户端编号只能用小写字母、数字和连字符（2-31 位）")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApiClientError(f"未知的权限范围 {unknown[0]}（可用：{', '.join(SCOPES)}）")
    if not scopes:
        raise ApiClientError("至少给出一个权限范围")
    if session.scalar(select(ApiClient).where(ApiClient.client_id == client_id)):
        raise ApiClientError(f"客户端 {client_id} 已存在")
    secret = secrets.token_urlsafe(32)
    client = ApiClient(client_id=client_id, name=name, scopes=sorted(set(scopes)),
                       secret_hash=_hash(rt, secret), created_by=by.staff_no)
    session.add(client)
    session.flush()
    audit.record(session, rt, "api_client.add", actor=by,
                 detail={"client_id": client_id, "name": name, "scopes": client.scopes})
    return client, f"{PREFIX}{client_id}_{secret}"


def revoke_client(session: Session, rt, client_id: str, by: audit.Actor) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    if client is None:
        raise ApiClientError(f"客户端 {client_id} 不存在")
    if client.revoked_at is None:
        client.revoked_at, client.revoked_by = utcnow(), by.staff_no
        session.execute(delete(ApiToken).where(ApiToken.client_id == client.id))
    audit.record(session, rt, "api_client.revoke", actor=by,
                 detail={"client_id": client_id})
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.client_id)))


def _identity(client: ApiClient, scopes: list[str] | None = None) -> ClientIdentity:
    return ClientIdentity(client.id, client.client_id, client.name,
                          frozenset(scopes if scopes is not None else client.scopes))


def check_secret(session: Session, rt, client_id: str, secret: str) -> ApiClient | None:
    """The live client whose secret this is, or None (constant-time comparison)."""
    client = session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    expected = client.secret_hash if client is not None else _hash(rt, "-")
    ok = hmac.compare_digest(expected, _hash(rt, secret))
    if client is None or not ok or client.revoked_at is not None:
        return None
    return client


def authenticate(session: Session, rt, token: str,
                 now: dt.datetime | None = None) -> ClientIdentity | None:
    """The client a bearer token belongs to (its own secret or an issued access token), or
    None when unknown, expired or revoked."""
    now = now or utcnow()
    if token.startswith(PREFIX):
        client_id, sep, secret = token[len(PREFIX):].partition("_")
        if not sep:
            return None
        client = check_secret(session, rt, client_id, secret)
        if client is None:
            return None
        ident = _identity(client)
    else:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(rt, token)))
        if row is None or row.expires_at <= now:
            return None
        client = session.get(ApiClient, row.client_id)
        if client is None or client.revoked_at is not None:
            return None
        ident = _identity(client, [s for s in row.scopes if s in client.scopes])
    if client.last_used_at is None or now - client.last_used_at > dt.timedelta(minutes=1):
        client.last_used_at = now
    return ident


def issue_token(session: Session, rt, client: ApiClient, scopes: list[str] | None,
                now: dt.datetime | None = None) -> tuple[str, ApiToken]:
    """OAuth2 client credentials: a new access token for ``client`` (scopes: a subset of the
    client's, all of them when not asked)."""
    now = now or utcnow()
    wanted = scopes if scopes else list(client.scopes)
    extra = sorted(set(wanted) - set(client.scopes))
    if extra:
        raise ApiClientError(f"invalid_scope: {extra[0]}")
    token = secrets.token_urlsafe(32)
    row = ApiToken(token_hash=_hash(rt, token), client_id=client.id, scopes=sorted(set(wanted)),
                   expires_at=now + TOKEN_TTL)
    session.add(row)
    session.execute(delete(ApiToken).where(ApiToken.expires_at < now - TOKEN_TTL))
    session.flush()
    return token, row


__all__ = [
    "CLIENT_ROLE", "SCOPES", "TOKEN_TTL", "ApiClientError", "ClientIdentity", "add_client",
    "authenticate", "check_secret", "issue_token", "list_clients", "revoke_client",
]
