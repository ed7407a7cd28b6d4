"""Applicants' identity documents: checked, encrypted with AES-256-GCM, stored as blobs.

The images are sensitive personal information (PIPL art. 28): the blob store only ever holds
ciphertext, the key lives outside the database (``identity_key`` from the environment, or
BINGAN_HOME/keys/copying.key, mode 0600), and the plain image is given only to holders of
``copying.identity`` (web.py checks, every view audited). The purge job deletes the blobs and
marks the rows when a request's retention has passed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import utcnow
from bingan.core.storage import BlobMissing, purge_blobs, store_blob

MAGIC = b"BGCI1"  # bingan copying identity, format 1: MAGIC | nonce(12) | ciphertext+tag
AAD = b"bingan-copying-identity"
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class IdentityError(ValueError):
    """An identity image that cannot be taken (too big, not an image, wrong key ...)."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    media_type: str
    width: int
    height: int


def _key_file(home: Path) -> Path:
    return home / "keys" / "copying.key"


def load_key(rt, settings) -> bytes:
    """The 32-byte key: from the settings (base64), else the key file, made on first use."""
    if settings.identity_key:
        try:
            key = base64.b64decode(settings.identity_key, validate=True)
        except ValueError as exc:
            raise IdentityError("identity_key 不是有效的 base64") from exc
        if len(key) != 32:
            raise IdentityError("identity_key 必须是 32 字节（base64 编码）")
        return key
    path = _key_file(Path(rt.home))
    if path.exists():
        key = base64.b64decode(path.read_bytes().strip())
        if len(key) != 32:
            raise IdentityError(f"密钥文件 {path.name} 已损坏")
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replace a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return load_key(rt, settings)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"copying-key-id:" + key).hexdigest()[:16]


def encrypt(key: bytes, data: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, AAD)


def decrypt(key: bytes, blob: bytes) -> bytes:
    if not blob.startswith(MAGIC):
        raise IdentityError("不是加密的证件影像")
    nonce, body = blob[len(MAGIC):len(MAGIC) + 12], blob[len(MAGIC) + 12:]
    try:
        return AESGCM(key).decrypt(nonce, body, AAD)
    except Exception as exc:  # InvalidTag: wrong key or altered bytes
        raise IdentityError("证件影像无法解密（密钥不符或文件被改动）") from exc


def check_image(data: bytes, settings, label: str = "") -> CheckedImage:
    """Bound and check an image before anything is stored: size, format, pixels, decodes."""
    where = f"{label}：" if label else ""
    if not data:
        raise IdentityError(f"{where}文件为空")
    if len(data) > settings.identity_max_bytes:
        raise IdentityError(f"{where}文件过大（{len(data) // 1024} KB，上限 "
                            f"{settings.identity_max_bytes // 1024} KB）")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            w, h = img.size
            if fmt not in FORMATS:
                raise IdentityError(f"{where}只接受 JPEG、PNG 或 WebP 图片（收到 {fmt}）")
            if w * h > settings.identity_max_pixels:
                raise IdentityError(f"{where}图片像素过多（{w}×{h}）")
            img.load()
    except IdentityError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise IdentityError(f"{where}不是可识别的图片（{exc.__class__.__name__}）") from exc
    return CheckedImage(data, FORMATS[fmt], w, h)


def store_encrypted(session: Session, rt, settings, image: CheckedImage) -> tuple[str, str]:
    """Encrypt and store; returns (blob key, key id)."""
    key = load_key(rt, settings)
    sha = store_blob(session, rt.store, encrypt(key, image.data), "application/octet-stream")
    return sha, key_id(key)


def read_plain(rt, settings, blob_sha256: str, expected_key_id: str) -> bytes:
    key = load_key(rt, settings)
    if key_id(key) != expected_key_id:
        raise IdentityError("证件影像由另一把密钥加密，当前密钥无法解密")
    try:
        return decrypt(key, rt.store.get(blob_sha256))
    except BlobMissing as exc:
        raise IdentityError("证件影像文件不存在") from exc


def purge_due(session: Session, rt, now: dt.datetime | None = None) -> list[str]:
    """Forget the identity images of requests whose retention has passed, in the caller's
    transaction: the rows stay (what was shown, when, from which source). Returns the blob
    keys; ``purge`` hands them to core's purge_blobs, which drops their rows and files."""
    from bingan_copying.models import CopyRequest

    now = now or utcnow()
    requests = session.scalars(select(CopyRequest).where(
        CopyRequest.identity_until <= now, CopyRequest.identity_purged_at.is_(None))).all()
    doomed: list[str] = []
    for req in requests:
        for doc in req.documents:
            if doc.blob_sha256:
                doomed.append(doc.blob_sha256)
                doc.blob_sha256, doc.purged_at = None, now
        req.identity_purged_at = now
        audit.record(session, rt, "copying.identity_purge", actor=audit.Actor(staff_no="system"),
                     mrn=req.mrn, detail={"request": req.request_no,
                                          "documents": len(req.documents)})
    # (ciphertexts carry a random nonce: no other row shares the blob)
    return doomed


def purge(rt, settings, now: dt.datetime | None = None) -> int:
    """The purge job: forget the images (blob rows included) in one transaction, then delete
    the files (core's storage.purge_blobs)."""
    return purge_blobs(rt.sessions, rt.store, lambda s: purge_due(s, rt, now))


def scan(settings) -> CheckedImage:
    """One page from the counter's SANE scanner (``scanimage``) as PNG, checked like any
    image. Nothing is stored: the browser puts it into the form like a camera frame."""
    import shutil
    import subprocess

    if not settings.scanner_device:
        raise IdentityError("未配置扫描仪（scanner_device）")
    exe = shutil.which("scanimage")
    if exe is None:
        raise IdentityError("未找到扫描程序 scanimage（请安装 Debian 软件包 sane-utils）")
    cmd = [exe, "-d", settings.scanner_device, "--format=png",
           f"--resolution={settings.scanner_resolution}", "--mode=Color",
           *settings.scanner_options]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=settings.scanner_timeout_seconds)
    except subprocess.TimeoutExpired as exc:
        raise IdentityError(f"扫描超过 {settings.scanner_timeout_seconds} 秒没有完成") from exc
    if res.returncode != 0 or not res.stdout:
        why = res.stderr.decode("utf-8", "replace").strip()[:200]
        raise IdentityError(f"扫描失败：{why or res.returncode}")
    return check_image(res.stdout, settings, "扫描件")
