"""Service settings: every knob is an environment variable prefixed `SERVICE_`, parsed once at start-up.

pydantic-settings does the parsing (strings from the environment become ints, bools, paths and
mappings, with a clear error naming the variable when one cannot), so a typo in a deployment fails at
start-up, not on the first request. Unknown `SERVICE_*` variables are reported but not fatal:
Kubernetes injects `<SVC>_SERVICE_HOST`-style variables for every Service in the namespace, and a
Service whose name starts with `service` would otherwise stop the pod from starting.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.contract import is_safe_version_name

ENV_PREFIX = "SERVICE_"
MiB = 1 << 20
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# The per-model variables that predate SERVICE_VERSIONS (deployments and the k8s ConfigMap set them):
# model name -> field. Each is folded into `versions`.
LEGACY_PINS = {"heart": "heart_version", "digits": "digits_version"}


def _listed(values: Any) -> str:
    return ", ".join(repr(value) for value in values)


class SettingsError(ValueError):
    """A `SERVICE_*` variable that cannot be parsed; the message names the variable."""


class EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of always `os.environ`.

    Only upper-case names count, as they always have: a lower-case `service_port` is somebody
    else's variable, and `unknown_variables` could not report it either.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ  # before super().__init__, which loads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Lower-cased keys: the lookup the case-insensitive source does (`service_port`).
        return {key.lower(): value for key, value in self.environ.items() if key.isupper()}


class Settings(BaseSettings):
    """What `python -m service` and `create_app` need; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="interface to bind; 0.0.0.0 inside a container")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, le=64, description="worker processes (one ONNX session each)")
    server: Literal["granian", "uvicorn"] = Field("granian", description="the ASGI server to run")
    artifacts_dir: Path = Field(Path("artifacts"), description="directory holding <model>/CURRENT and versions")
    # NoDecode: pydantic-settings would read a complex field as JSON only, and fail with an error that
    # names no variable; the validators below take a comma list too and raise naming the variable.
    models: Annotated[tuple[str, ...], NoDecode] = Field(
        ("heart", "digits"),
        description="the models this service loads and serves: names (a-z, 0-9, '_') comma-separated or "
        "as a JSON list, each with its <model>/ directory under the artifacts directory",
    )
    heart_version: str | None = Field(None, description="serve this heart version instead of CURRENT")
    digits_version: str | None = Field(None, description="serve this digits version instead of CURRENT")
    # After the two above: its validator reads their validated values (ValidationInfo.data) to fold them in.
    versions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        validate_default=True,  # so the legacy pins are folded in when SERVICE_VERSIONS is unset
        description='versions to serve instead of CURRENT, by model, as JSON: {"heart": "<version>"}; '
        "SERVICE_HEART_VERSION and SERVICE_DIGITS_VERSION add to it",
    )
    admin_token: SecretStr | None = Field(
        None, min_length=16, description="bearer token for POST /admin/reload (unset: the route is absent)"
    )
    metrics_dir: Path | None = Field(
        None, description="prometheus_client multiprocess directory, emptied at start (default: a temp dir)"
    )
    reload_interval: float = Field(
        5.0, ge=0, le=3600, description="seconds between checks of each model's CURRENT file (0: never)"
    )
    drain_seconds: float = Field(
        20.0, ge=0, le=3600, description="after SIGTERM, longest wait for in-flight requests before exiting"
    )
    shutdown_delay: float = Field(
        2.0,
        ge=0,
        le=300,
        description="granian: after SIGTERM, seconds of serving on, not ready and closing each connection, before "
        "the listener closes",
    )
    grpc_port: int = Field(
        8001, ge=0, le=65535, description="Open Inference Protocol gRPC port, shared by the workers (0: no gRPC)"
    )
    max_batch: int = Field(1000, ge=1, le=100_000, description="most instances in one batch request")
    # 4 MiB: a 1000-row heart batch is ~150 kB and a 512×512 image in JSON ~1 MB; a body over the
    # limit is refused (413) before it is read, so the limit also caps the memory one request costs.
    max_body_bytes: int = Field(4 * MiB, ge=1024, le=256 * MiB, description="largest request body, bytes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log threshold")
    access_log: bool = Field(True, description="write one JSON line per request (never bodies)")
    web: bool = Field(True, description="serve the web page at / and the model cards (false: locked-down deployments)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments only: the environment comes in through `from_env` alone, so that
        # `Settings(artifacts_dir=...)` in a test or a tool means exactly those values whatever
        # SERVICE_* variables the shell running it exports.
        return (init_settings,)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("server", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("models", mode="before")
    @classmethod
    def _model_list(cls, value: Any) -> Any:
        """`heart,digits` or `["heart", "digits"]` from the environment; a list or tuple from Python."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else [n.strip() for n in value.split(",")]
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        # A model name becomes a directory, a route segment and a metric label: keep it plain.
        if not names:
            raise ValueError("name at least one model")
        if bad := [name for name in names if not MODEL_NAME.fullmatch(name)]:
            raise ValueError(f"not a model name (a lower-case letter, then a-z, 0-9 or '_'): {_listed(bad)}")
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"a model named twice: {_listed(twice)}")
        return names

    @field_validator("heart_version", "digits_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        """A pinned version is a directory name: refuse anything that could leave the model's directory."""
        if value == "":  # the ConfigMap's `SERVICE_HEART_VERSION=`: follow CURRENT
            return None
        if isinstance(value, str) and not is_safe_version_name(value):
            raise ValueError(f"{value!r} is not a valid version name (letters, digits, '-', '_', '.')")
        return value

    @field_validator("versions", mode="before")
    @classmethod
    def _version_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            # Empty like the per-model variables: `SERVICE_VERSIONS=` pins nothing.
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("versions")
    @classmethod
    def _version_map(cls, versions: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if bad := [name for name in versions if not MODEL_NAME.fullmatch(name)]:
            raise ValueError(f"not a model name (a lower-case letter, then a-z, 0-9 or '_'): {_listed(bad)}")
        if bad := [version for version in versions.values() if not is_safe_version_name(version)]:
            raise ValueError(f"not a valid version name (letters, digits, '-', '_', '.'): {_listed(bad)}")
        folded = dict(versions)
        for model, field in LEGACY_PINS.items():
            # Absent from info.data when its own validator refused it (that error names its variable).
            if (legacy := info.data.get(field)) is None:
                continue
            if folded.setdefault(model, legacy) != legacy:
                # Two pins for one model: which one an operator meant is a guess, so refuse both.
                raise ValueError(f"pins {model} to {folded[model]!r} but {ENV_PREFIX}{field.upper()} to {legacy!r}")
        return folded

    def pinned_version(self, model: str) -> str | None:
        """The version a setting pins for `model`, or None to follow its CURRENT file."""
        return self.versions.get(model)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `SERVICE_<FIELD>` variables from `environ` (default: os.environ) and nothing else;
        raise SettingsError naming each bad one."""
        source = EnvironSource(cls, os.environ if environ is None else environ)
        try:
            return cls(**source())
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
            )
            raise SettingsError(f"invalid settings: {problems}") from None

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str] | None = None) -> list[str]:
        """`SERVICE_*` names in the environment that no setting reads (likely typos)."""
        environ = os.environ if environ is None else environ
        known = {ENV_PREFIX + name.upper() for name in cls.model_fields}
        return sorted(key for key in environ if key.startswith(ENV_PREFIX) and key not in known)

    def describe(self) -> dict[str, Any]:
        """The settings as logged at start-up: the admin token shows only whether it is set."""
        described = self.model_dump(mode="json")
        described["admin_token"] = "set" if self.admin_token else None
        return described
