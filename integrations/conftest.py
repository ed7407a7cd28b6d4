"""Plugin tests use the same fixtures as core's (tests/fixtures_db.py): `rt`, `db_url` ..."""

from fixtures_db import *  # noqa: F401,F403
