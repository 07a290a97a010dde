"""Worker processes stop when their supervisor dies, instead of serving on as orphans.

granian's supervisor (always) and uvicorn's (SERVICE_WORKERS > 1) start the workers with
multiprocessing and replace any that dies. If the supervisor itself is killed (SIGKILL, the OOM
killer), nothing told the workers: they were re-parented to init and served on, unsupervised (a
crashed worker was no longer replaced), kept holding the listening port (so a restarted service
could not bind it: "address already in use"), and kept their stale settings. `python -m service`
had exited, yet the port still answered.

`exit_with_supervisor` asks Linux to send the worker SIGTERM when its parent dies (PR_SET_PDEATHSIG),
so it drains the requests it holds, as on a normal shutdown, and exits. It acts only in a worker
(a process started by multiprocessing): one in-process uvicorn worker has no supervisor of ours.
Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys

logger = logging.getLogger("service.supervision")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_supervisor() -> bool:
    """In a worker process: get SIGTERM when the parent dies; True if that is now arranged."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("cannot ask to be stopped with the supervisor", extra={"errno": ctypes.get_errno()})
        return False
    if os.getppid() != parent.pid:  # it died before the request took effect: nobody will signal us
        os.kill(os.getpid(), signal.SIGTERM)
    return True
