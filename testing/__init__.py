"""Core's test kit, installed with core (``pip install bingan[test]``) so a plugin's tests run
from its own folder or wheel, outside this repository:

- ``bingan.testing.plugin``: the pytest plugin (entry point ``pytest11``, loaded by itself):
  fixtures ``db_templates``, ``db_url``, ``rt``, ``empty_db_url`` on SQLite and PostgreSQL;
- ``bingan.testing.db``: ``build_test_runtime``, ``make_config``, template databases and their
  copies (``migrated_templates``, ``database_copy``) for a plugin's own prepared worlds;
- ``bingan.testing.web``: ``web_client``, ``login``, ``login_admin``, ``post_form``,
  ``make_staff``, ``events`` ...
"""
