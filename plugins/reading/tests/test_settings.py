"""Settings: the defaults are valid with nothing configured; bad values stop start-up with a
message naming plugins.reading and the key."""

from __future__ import annotations

import pytest

from bingan.core.config import ConfigError, validate_settings

from bingan_reading.settings import ReadingSettings


def test_defaults_are_valid():
    s = validate_settings("plugins.reading", ReadingSettings, {})
    assert s.approvers == {"*": ["role:records"]} and s.max_days == 30
    assert s.watermark.opacity == 0.28 and s.page_workers == 2


@pytest.mark.parametrize("table, key", [
    ({"signer_roles": ["janitor"]}, "signer_roles"),
    ({"approvers": {"*": ["boss"]}}, "approvers"),
    ({"approvers": {"1001": ["role:records"]}}, "approvers"),
    ({"max_days": 0}, "max_days"),
    ({"page_workers": 0}, "page_workers"),
    ({"watermark": {"opacity": 1.0}}, "opacity"),
    ({"watermark": {"colour": [1, 2, 3]}}, "colour"),
    ({"share": [{"from_department": "1001", "to": "*"}]}, "to"),
    ({"nonsense": 1}, "nonsense"),
])
def test_bad_settings_name_the_key(table, key):
    with pytest.raises(ConfigError, match=rf"plugins\.reading.*{key}"):
        validate_settings("plugins.reading", ReadingSettings, table)
