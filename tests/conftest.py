"""Fixtures for core's tests; they live in fixtures_db so plugin test folders share them."""

from fixtures_db import *  # noqa: F401,F403
