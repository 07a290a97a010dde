"""Small helpers the models share for checking protocol tensors and quoting their values in errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

NUMERIC = ("FP32", "FP64", "INT64")


def show(value: object) -> str:
    """A value as the client wrote it: 3 rather than 3.0 for whole numbers."""
    if isinstance(value, float):  # numpy's float64 too, which would print as np.float64(...)
        return str(int(value)) if value.is_integer() else repr(float(value))
    return repr(value)


def first(mask: np.ndarray) -> int:
    """The index of the first True in a 1-D mask (the caller checked that there is one)."""
    return int(np.argmax(mask))


@dataclass(frozen=True, slots=True)
class Categorical:
    """A text tensor held as pandas holds a categorical column: its distinct `categories` (str) and, per
    element, the index of its category (`codes`). What a wire parser that recognises elements it has seen
    before gives (service.api.v2.raw) instead of a str object per element: a model maps the few categories
    to its codes and gathers, rather than looking up every element (tabular_tensors). It answers the few
    array questions the tensor checks ask (shape, size, reshape, one element)."""

    codes: np.ndarray  # integers, any shape
    categories: np.ndarray  # object array of str
    dtype: ClassVar[np.dtype] = np.dtype(object)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    @property
    def ndim(self) -> int:
        return self.codes.ndim

    @property
    def size(self) -> int:
        return self.codes.size

    def reshape(self, *shape: Any) -> Categorical:
        return Categorical(self.codes.reshape(*shape), self.categories)

    def __getitem__(self, index: Any) -> Any:
        return self.categories[self.codes[index]]

    def __len__(self) -> int:
        return len(self.codes)

    def tolist(self) -> list[Any]:
        return self.categories[self.codes].tolist()
