from __future__ import annotations

import pytest

from infra.settings import ConfigurationError, embedded_database_url, load_settings


def test_defaults_match_make_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "AFTERSALES_TASK_QUEUE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.temporal_address == "localhost:7233"
    assert settings.temporal_namespace == "default"
    assert settings.task_queue == "aftersales"
    assert settings.effective_database_url == embedded_database_url()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEMPORAL_ADDRESS", "no port here"),
        ("DATABASE_URL", "mysql://somewhere/db"),
        ("AFTERSALES_TASK_QUEUE", ""),
    ],
)
def test_bad_setting_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings()
