"""schemathesis hooks of the security run (``SCHEMATHESIS_HOOKS``): every generated POST to
an H5 form carries the signed-in patient's CSRF token (``BOOKING_CSRF_TOKEN``), so it reaches
the handler instead of stopping at the token check (which has tests of its own). The forms
are read by the handlers themselves (no body in the OpenAPI document): a POST without a
generated body is sent as a form holding the token alone."""

from __future__ import annotations

import os

import schemathesis
from schemathesis.core import NotSet

TOKEN = os.environ.get("BOOKING_CSRF_TOKEN", "")
FORM = "application/x-www-form-urlencoded"


@schemathesis.hook
def map_case(context, case):
    if not TOKEN or case.method.upper() != "POST" or case.path.endswith("/pay/notify"):
        return case
    if isinstance(case.body, dict):
        object.__setattr__(case, "body", {**case.body, "_csrf_token": TOKEN})
    elif isinstance(case.body, NotSet) or case.body is None:
        object.__setattr__(case, "body", {"_csrf_token": TOKEN})
        object.__setattr__(case, "media_type", FORM)
    return case
