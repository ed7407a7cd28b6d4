"""bingan core: record identity, storage, permissions, audit; assembles app, CLI, DB and jobs.

Core never imports a plugin (tests/test_layout.py checks the whole tree).
"""

__version__ = "0.1.0"
