"""Web test helpers: now ``bingan.testing.web`` (installed with core); re-exported here for the
repository's tests (``from webutil import web_client, login ...``)."""

import support  # noqa: F401  (makes bingan.testing importable in a venv that predates it)
from bingan.testing.web import *  # noqa: F401,F403
