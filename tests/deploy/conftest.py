"""Fixtures for the deploy/ tests: the manifests as the real kustomize renders them."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.deploy.engine import BuiltImage, Engine, build_image, existing_image, find_engine
from tests.deploy.manifests import K8S, kustomize_build


@pytest.fixture(scope="session")
def base_objects() -> list[dict[str, Any]]:
    return kustomize_build(K8S / "base")


@pytest.fixture(scope="session")
def production_objects() -> list[dict[str, Any]]:
    return kustomize_build(K8S / "overlays" / "production")


@pytest.fixture(scope="session")
def engine() -> Engine:
    """podman, or docker with a daemon; a machine without either fails these tests (never skips them)."""
    return find_engine()


@pytest.fixture(scope="session")
def built_image(engine: Engine) -> BuiltImage:
    """deploy/Dockerfile built by `make image`'s script (its layer cache and base image reused), or the
    image MODELSERVE_IMAGE names (`make kube-play` sets it to the one `make image` has just built)."""
    image = existing_image(engine, name) if (name := os.environ.get("MODELSERVE_IMAGE")) else build_image(engine)
    print(f"\nimage {image.name}: {image.size_mb:.0f} MB, build step {image.seconds:.0f} s")
    return image
