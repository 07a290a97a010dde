"""Small helpers the models share for checking protocol tensors and quoting their values in errors."""

from __future__ import annotations

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
