"""Fixtures for the deploy/ tests: the manifests as the real kustomize renders them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import K8S, kustomize_build


@pytest.fixture(scope="session")
def base_objects() -> list[dict[str, Any]]:
    return kustomize_build(K8S / "base")


@pytest.fixture(scope="session")
def production_objects() -> list[dict[str, Any]]:
    return kustomize_build(K8S / "overlays" / "production")
