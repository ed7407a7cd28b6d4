"""Settings of the HL7 v2 listener (``[plugins.hl7v2]`` in plugins.toml).

Field paths are ``SEG-field[.component]`` (``PV1-19``, ``PV1-3.1``); identifiers in PID-3 are
picked by their identifier type code (CX-5), as Chinese HIS feeds carry several there.
"""

from __future__ import annotations

import ipaddress
import re

import msgspec

_PATH = re.compile(r"^[A-Z][A-Z0-9]{2}-\d{1,3}(\.\d{1,2})?$")


class Hl7Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "0.0.0.0"
    port: int = 2575
    # Peers allowed to connect (addresses or networks); everyone else is cut off before a byte
    # is read. MLLP has no sign-in of its own: list the HIS interface engine here.
    allow_from: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    # MSH-3 sending applications accepted (empty: any)
    senders: list[str] = msgspec.field(default_factory=list)
    encoding: str = "utf-8"  # many Chinese HIS send gb18030
    receiving_application: str = "BINGAN"
    max_message_kb: int = 256
    # what a message's fields mean in this hospital's feed
    mrn_id_type: str = "MR"            # PID-3 repetition with this CX-5 is the MRN (else the 1st)
    id_number_id_type: str = "ID"      # ... with this one the resident ID number
    admission_no_field: str = "PV1-19"  # 住院号
    visit_no_field: str = ""           # 住院次数, e.g. "PV2-?": empty = next for the patient
    department_field: str = "PV1-10"   # department code or name
    ward_field: str = "PV1-3.1"
    patient_classes: list[str] = msgspec.field(default_factory=lambda: ["I"])  # PV1-2
    # PV1-36 discharge disposition -> 离院方式 (CV06.00.226); unmapped values pass unchanged
    discharge_way_map: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError("port must be 1-65535")
        for net in self.allow_from:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow_from {net!r} is not an address or network") from exc
        for key in ("admission_no_field", "department_field", "ward_field"):
            if not _PATH.match(getattr(self, key)):
                raise ValueError(f"{key} must look like PV1-19 or PV1-3.1")
        if self.visit_no_field and not _PATH.match(self.visit_no_field):
            raise ValueError("visit_no_field must look like PV1-19 or PV1-3.1 (or be empty)")
        try:
            "测".encode(self.encoding)
        except (LookupError, UnicodeEncodeError) as exc:
            raise ValueError(f"encoding {self.encoding!r} cannot carry Chinese") from exc
        if not 1 <= self.max_message_kb <= 16384:
            raise ValueError("max_message_kb must be 1-16384")
