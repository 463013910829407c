from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings


def test_defaults_match_the_original_configuration_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.KAFKA_CONSUMPTION_TOPIC == "events_plugin_ingestion"
    assert settings.SCHEDULE_LOCK_TTL == 60
    assert settings.PLUGINS_RELOAD_PUBSUB_CHANNEL == "reload-plugins"
    assert settings.KAFKA_MAX_MESSAGE_BATCH_SIZE == 900_000
    assert settings.TASK_TIMEOUT == 30.0


def test_environment_values_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_TIMEOUT", "3008.12")
    monkeypatch.setenv("DISABLE_MMDB", "1")
    monkeypatch.setenv("LOG_LEVEL", "WARN")
    settings = load_settings()
    assert settings.TASK_TIMEOUT == 3008.12
    assert settings.DISABLE_MMDB is True
    assert settings.LOG_LEVEL == "warning"


def test_invalid_value_names_the_variable_and_the_expected_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEDULE_LOCK_TTL", "soon")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "SCHEDULE_LOCK_TTL='soon'" in message and "integer" in message
    assert "LOG_LEVEL='loud'" in message and "'debug'" in message


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `")
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    for name, field in Settings.model_fields.items():
        assert name in rows, f"{name} is not in the README's settings table"
        if field.default not in (None, ""):
            assert rows[name] == str(field.default), f"{name}'s default in the README"
