"""SERVICE_* settings: parsed once, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.artifacts_dir == Path("artifacts")
    assert settings.max_batch == 1000
    assert settings.max_body_bytes == 4 * 1024 * 1024
    assert settings.log_level == "INFO"
    assert settings.access_log is True
    assert settings.pinned_version("heart") is None


def test_values_come_from_service_variables() -> None:
    settings = Settings.from_env(
        {
            "SERVICE_HOST": "0.0.0.0",
            "SERVICE_PORT": "9001",
            "SERVICE_WORKERS": "2",
            "SERVICE_ARTIFACTS_DIR": "/srv/artifacts",
            "SERVICE_MAX_BATCH": "50",
            "SERVICE_LOG_LEVEL": "debug",
            "SERVICE_ACCESS_LOG": "false",
            "SERVICE_DIGITS_VERSION": "20261122T033533Z-9f9911a2",
            "PORT": "1",  # not ours
        }
    )
    assert (settings.host, settings.port, settings.workers, settings.max_batch) == ("0.0.0.0", 9001, 2, 50)
    assert settings.artifacts_dir == Path("/srv/artifacts")
    assert settings.log_level == "DEBUG"
    assert settings.access_log is False
    assert settings.pinned_version("digits") == "20261122T033533Z-9f9911a2"
    assert settings.pinned_version("heart") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SERVICE_PORT", "eighty"),
        ("SERVICE_PORT", "70000"),
        ("SERVICE_WORKERS", "0"),
        ("SERVICE_MAX_BATCH", "0"),
        ("SERVICE_MAX_BODY_BYTES", "10"),
        ("SERVICE_LOG_LEVEL", "loud"),
        ("SERVICE_ACCESS_LOG", "maybe"),
        ("SERVICE_HEART_VERSION", "../x"),
        ("SERVICE_ADMIN_TOKEN", "short"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_admin_token_is_never_shown() -> None:
    settings = Settings.from_env({"SERVICE_ADMIN_TOKEN": "s3cret-token-of-some-length"})
    assert settings.admin_token is not None
    assert "s3cret" not in repr(settings)
    assert settings.describe()["admin_token"] == "set"
    assert "s3cret" not in str(settings.describe())


def test_unknown_service_variables_are_reported() -> None:
    environ = {"SERVICE_PROT": "1", "SERVICE_PORT": "1", "MYSVC_SERVICE_HOST": "x"}
    assert Settings.unknown_variables(environ) == ["SERVICE_PROT"]
