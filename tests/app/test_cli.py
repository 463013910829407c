import pytest

from app.cli import main
from app.settings import Settings


def test_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in Settings.model_fields:
        assert name in text
    assert "(default 'events_plugin_ingestion')" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("plugin-server ")


def test_invalid_setting_fails_at_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_PARTITIONS", "zero")
    assert main(["--healthcheck"]) == 2
    assert "KAFKA_PARTITIONS='zero'" in capsys.readouterr().err


def test_healthcheck_fails_when_redis_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1")
    assert main(["--healthcheck"]) == 1
    assert capsys.readouterr().out.startswith("unhealthy: cannot read")


def test_the_faust_command_works_without_a_broker(tmp_path) -> None:
    """Importing the app does no I/O: topics are made when a worker starts."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "KAFKA_HOSTS": "127.0.0.1:1", "DATA_DIR": str(tmp_path / "data")}
    faust = Path(sys.executable).parent / "faust"
    shown = subprocess.run(
        [str(faust), "-A", "app", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "Usage: faust" in shown.stdout and "Traceback" not in shown.stderr
    assert not (tmp_path / "data").exists()
