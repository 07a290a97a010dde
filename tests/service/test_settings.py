"""SERVICE_* settings: parsed once, with errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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


def test_versions_pin_models_by_name_from_json() -> None:
    settings = Settings.from_env({"SERVICE_VERSIONS": '{"heart": "20260101T000000Z-ab12", "iris": "v2"}'})
    assert settings.versions == {"heart": "20260101T000000Z-ab12", "iris": "v2"}
    assert settings.pinned_version("heart") == "20260101T000000Z-ab12"
    assert settings.pinned_version("iris") == "v2"  # any model name, not only heart and digits
    assert settings.pinned_version("digits") is None
    assert Settings.from_env({"SERVICE_VERSIONS": ""}).versions == {}  # empty like `SERVICE_HEART_VERSION=`


def test_legacy_version_variables_are_folded_into_the_mapping() -> None:
    settings = Settings.from_env(
        {"SERVICE_VERSIONS": '{"digits": "d1"}', "SERVICE_HEART_VERSION": "h1", "SERVICE_DIGITS_VERSION": "d1"}
    )
    assert settings.versions == {"heart": "h1", "digits": "d1"}
    assert settings.heart_version == "h1"
    # The ConfigMap's empty values follow CURRENT.
    empty = Settings.from_env({"SERVICE_HEART_VERSION": "", "SERVICE_DIGITS_VERSION": ""})
    assert empty.versions == {} and empty.heart_version is None
    assert Settings(heart_version="h2").pinned_version("heart") == "h2"  # keyword construction folds too


def test_two_different_pins_for_one_model_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"SERVICE_VERSIONS.*SERVICE_HEART_VERSION"):
        Settings.from_env({"SERVICE_VERSIONS": '{"heart": "h1"}', "SERVICE_HEART_VERSION": "h2"})


@pytest.mark.parametrize(
    "value",
    [
        '{"heart": "../x"}',  # a version that leaves the model's directory
        '{"heart": ".hidden"}',
        '{"../heart": "v1"}',  # a model that is no model name
        '{"Heart": "v1"}',
        '{"heart": 1}',
        '["v1"]',
        "{heart: v1}",  # not JSON
    ],
)
def test_bad_version_mappings_are_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="SERVICE_VERSIONS"):
        Settings.from_env({"SERVICE_VERSIONS": value})


def test_models_default_to_heart_and_digits() -> None:
    assert Settings.from_env({}).models == ("heart", "digits")
    assert Settings().models == ("heart", "digits")


@pytest.mark.parametrize(
    ("value", "models"),
    [
        ("heart", ("heart",)),
        ("digits, heart", ("digits", "heart")),
        ('["heart", "iris_2"]', ("heart", "iris_2")),
    ],
)
def test_models_come_comma_separated_or_as_a_json_list(value: str, models: tuple[str, ...]) -> None:
    assert Settings.from_env({"SERVICE_MODELS": value}).models == models


@pytest.mark.parametrize(
    "value", ["", "heart,,digits", "Heart", "2heart", "heart-v2", "../heart", "heart,heart", "[1]", '["heart"']
)
def test_bad_models_are_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="SERVICE_MODELS"):
        Settings.from_env({"SERVICE_MODELS": value})


def test_an_explicit_mapping_is_the_only_environment_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_PORT", "9002")
    monkeypatch.setenv("service_workers", "3")  # lower case: not a SERVICE_* variable
    assert Settings.from_env({}).port == 8000
    assert Settings.from_env({"SERVICE_HOST": "0.0.0.0"}).port == 8000
    assert (Settings.from_env().port, Settings.from_env().workers) == (9002, 1)
    # Keyword construction reads no environment at all: tests and tools get exactly what they pass.
    assert Settings(access_log=False).port == 8000


def test_settings_are_frozen_and_copied_with_updates() -> None:
    settings = Settings(access_log=False)
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert settings.model_copy(update={"access_log": True}).access_log is True
