"""The shared fixtures are core's pytest plugin ``bingan.testing.plugin``; the helpers of older
imports (``from fixtures_db import ...``) are re-exported from ``bingan.testing.db``."""

import support  # noqa: F401  (makes bingan.testing importable in a venv that predates it)
from bingan.testing.db import *  # noqa: F401,F403
from bingan.testing.db import pg_admin_engine as _pg_admin_engine  # noqa: F401
from bingan.testing.db import pg_reachable as _pg_reachable  # noqa: F401
from bingan.testing.db import pg_url as _pg_url  # noqa: F401
