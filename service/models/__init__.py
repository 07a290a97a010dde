"""The models this service can serve: one module per model, each registering its Model class by the name
its manifests carry. The data plane looks classes up in MODEL_CLASSES and imports no model module."""

from service.models import digits, heart  # noqa: F401  (importing registers the classes)
from service.models.base import MODEL_CLASSES, Model

__all__ = ["MODEL_CLASSES", "Model"]
