"""Service settings: every knob is an environment variable prefixed `SERVICE_`, parsed once at start-up.

pydantic does the parsing (strings from the environment become ints, bools and paths, with a clear
error naming the variable when one cannot), so a typo in a deployment fails at start-up, not on the
first request. Unknown `SERVICE_*` variables are reported but not fatal: Kubernetes injects
`<SVC>_SERVICE_HOST`-style variables for every Service in the namespace, and a Service whose name
starts with `service` would otherwise stop the pod from starting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from service.contract import is_safe_version_name

ENV_PREFIX = "SERVICE_"
MiB = 1 << 20


class SettingsError(ValueError):
    """A `SERVICE_*` variable that cannot be parsed; the message names the variable."""


class Settings(BaseModel):
    """What `python -m service` and `create_app` need; see the README's settings table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="interface to bind; 0.0.0.0 inside a container")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, le=64, description="worker processes (one ONNX session each)")
    server: Literal["granian", "uvicorn"] = Field("granian", description="the ASGI server to run")
    artifacts_dir: Path = Field(Path("artifacts"), description="directory holding <model>/CURRENT and versions")
    heart_version: str | None = Field(None, description="serve this heart version instead of CURRENT")
    digits_version: str | None = Field(None, description="serve this digits version instead of CURRENT")
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
    max_batch: int = Field(1000, ge=1, le=100_000, description="most instances in one batch request")
    # 4 MiB: a 1000-row heart batch is ~150 kB and a 512×512 image in JSON ~1 MB; a body over the
    # limit is refused (413) before it is read, so the limit also caps the memory one request costs.
    max_body_bytes: int = Field(4 * MiB, ge=1024, le=256 * MiB, description="largest request body, bytes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log threshold")
    access_log: bool = Field(True, description="write one JSON line per request (never bodies)")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("server", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("heart_version", "digits_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        """A pinned version is a directory name: refuse anything that could leave the model's directory."""
        if value == "":
            return None
        if isinstance(value, str) and not is_safe_version_name(value):
            raise ValueError(f"{value!r} is not a valid version name (letters, digits, '-', '_', '.')")
        return value

    def pinned_version(self, model: str) -> str | None:
        """The version a setting pins for `model`, or None to follow its CURRENT file."""
        return {"heart": self.heart_version, "digits": self.digits_version}.get(model)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `SERVICE_<FIELD>` variables; raise SettingsError naming each bad one."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in environ
        }
        try:
            return cls(**values)
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
