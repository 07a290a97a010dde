"""The process's heap after models load: what the cyclic garbage collector looks at, and what glibc keeps.

Measured in-process (bench.ab --cost, 32 concurrent single heart requests): the 32 requests in flight
hold about 800 GC-tracked objects at their peak, over CPython's gen0 threshold of 700, so a collection
ran every ~35 requests; every tenth of those walked gen1, and every so often a full collection walked
all ~73,000 objects the start-up left (the app, the routes, OpenAPI, numpy, onnxruntime's bindings).
None of those objects is ever garbage. So, once the models are loaded and after every reload:
- `gc.freeze()` moves every object alive at that moment out of the collector's sight (they are still
  freed by reference counting as usual; only cycles among them would outlive their use, hence
  `gc.unfreeze()` + `gc.collect()` before each freeze, so a replaced version's cycles are collected);
- the gen0 threshold goes from 700 to GEN0_THRESHOLD, above what a worker's requests in flight hold,
  so collections run when garbage may exist rather than on every burst of concurrent requests;
- `malloc_trim` gives the pages glibc kept of freed memory back to the kernel (a replaced version's
  ONNX session and arrays), which keeps a worker's RSS flat across hot reloads.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc

GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Collect what is garbage now, freeze the survivors, and return freed pages to the kernel."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    if threshold[0] < GEN0_THRESHOLD:
        gc.set_threshold(GEN0_THRESHOLD, *threshold[1:])
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)
