"""Core tables. Plugins may declare their own tables on ``Base`` (with their own migrations)."""

from bingan.core.models.access import AuditEvent, AuditHead, Grant
from bingan.core.models.apiclient import ApiClient, ApiToken
from bingan.core.models.base import Base, UTCDateTime, utcnow
from bingan.core.models.identity import (
    Admission, Blob, Diagnosis, Document, Operation, Page, Patient, Signer,
)
from bingan.core.models.tasks import Task
from bingan.core.models.staff import (
    Department, LoginFailure, Notification, Role, Staff, WebSession, staff_role,
)

__all__ = [
    "Admission", "ApiClient", "ApiToken", "AuditEvent", "AuditHead", "Base", "Blob", "Department", "Diagnosis",
    "Document", "Grant", "Notification", "Operation", "Page", "Patient", "Role", "Signer",
    "LoginFailure", "Staff", "Task", "UTCDateTime", "WebSession", "staff_role", "utcnow",
]
