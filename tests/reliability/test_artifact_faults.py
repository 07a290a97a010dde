"""Every kind of broken artifact, twice: refused at start-up (the process exits non-zero naming the
file) and refused by a hot reload (the old version keeps serving, the answer and the log say why, and
`modelserve_reloads_total{result="failure"}` counts it). The outcomes go to bench-results/faults.md.

tests/service/test_artifact_refusal.py checks the same refusals one level down (load_artifact and
load_registry in-process); here it is `python -m service` as deployed.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from tests.reliability.faults import (
    ARTIFACT_FAULTS,
    Fault,
    Server,
    StartUp,
    check_reload,
    check_start_up,
    fault_fixtures,
)

fault_table, start_ups, server = fault_fixtures(ARTIFACT_FAULTS, "faults")


@pytest.mark.parametrize("fault", ARTIFACT_FAULTS, ids=lambda fault: fault.key)
def test_start_up_refuses(fault: Fault, start_ups: dict[str, Future[StartUp]]) -> None:
    check_start_up(fault, start_ups[fault.key])


@pytest.mark.parametrize("fault", ARTIFACT_FAULTS, ids=lambda fault: fault.key)
def test_reload_refuses_and_the_old_version_serves(fault: Fault, server: Server) -> None:
    check_reload(fault, server)
