"""Settings errors name the variable and never echo a password."""

from __future__ import annotations

import pytest

from ioc.settings import CommonSettings, SettingsError, load, mask_secrets


@pytest.mark.parametrize(("name", "value"), [
    ("IOC_DATABASE_URL", "mysql://ioc:hunter2@db:3306/ioc"),
    ("IOC_DATABASE_URL", "postgres-ish://ioc:hunter2@db/ioc"),
    ("IOC_MQTT_URL", "mqtt://ingest:hunter2@broker:99999"),
    ("IOC_MQTT_URL", "http://ingest:hun@ter2@broker:1883"),
])
def test_a_bad_url_setting_is_named_with_its_password_masked(monkeypatch: pytest.MonkeyPatch, name: str,
                                                            value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load(CommonSettings)
    message = str(caught.value)
    assert name in message and "***" in message
    assert "hunter2" not in message and "ter2" not in message


def test_mask_secrets_covers_urls_and_key_value_dsns() -> None:
    assert mask_secrets("postgresql://ioc:p@ss:w/rd@db:5432/ioc") == "postgresql://ioc:***@db:5432/ioc"
    assert mask_secrets("host=db password='a b' user=ioc") == "host=db password=*** user=ioc"
    assert mask_secrets("postgresql://ioc@db/ioc") == "postgresql://ioc@db/ioc"  # nothing to hide
