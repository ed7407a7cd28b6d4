"""Core tables. Plugins may declare their own tables on ``Base`` (with their own migrations)."""

from core.models.access import AuditEvent, AuditHead, Grant
from core.models.base import Base, UTCDateTime, utcnow
from core.models.identity import (
    Admission, Blob, Diagnosis, Document, Operation, Page, Patient, Signer,
)
from core.models.tasks import Task
from core.models.staff import Department, Notification, Role, Staff, WebSession, staff_role

__all__ = [
    "Admission", "AuditEvent", "AuditHead", "Base", "Blob", "Department", "Diagnosis",
    "Document", "Grant", "Notification", "Operation", "Page", "Patient", "Role", "Signer",
    "Staff", "Task", "UTCDateTime", "WebSession", "staff_role", "utcnow",
]
