"""Schema-driven fuzzing of the whole HTTP surface from the service's own `/schema/openapi.json`.

schemathesis reads the document (the one the running process serves: a test compares them) and, for
every documented operation, sends the documented examples, its coverage cases (boundaries, missing,
extra or wrong-typed values, undocumented methods, a missing content type) and Hypothesis-generated
requests, valid and invalid, over a real socket to `python -m service` (admin route on). Every
response must be: not a 5xx; of a documented status; of a documented content type; a body that
validates against the schema documented for that status; and, on the prediction routes, a 4xx for
any body the document calls invalid. So the OpenAPI document is a contract the service is held to.

CI (`make test`) runs a small, derandomised budget per operation; `make fuzz` sets `FUZZ_EXAMPLES`
(and `FUZZ_SEED`) for a long run. Each run writes `bench-results/fuzz-openapi.md`: per operation the
number of requests sent and the statuses seen.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.serialization import encode_json
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.reliability.live import ADMIN_TOKEN, LiveService, write_table

# Fuzzing-phase examples per operation; the examples and coverage phases add their own fixed cases on
# top. Small and derandomised in CI; `make fuzz` sets FUZZ_EXAMPLES (and FUZZ_SEED) and explores.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
EXPLORE = "FUZZ_EXAMPLES" in os.environ
SEED = int(os.environ.get("FUZZ_SEED", "0"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The prediction routes' request schemas are exact (service/api/docs.py), so a body the document
# calls invalid must be refused too. (Not the converse, `positive_data_acceptance`: JSON Schema counts
# `2.0` as an integer, the service takes only JSON integers for `ca` and the categories, as the README
# says; and a blank image or ragged rows are schema-valid but refused, as the route descriptions say.)
REJECTS_INVALID = {
    "POST /predict/heart",
    "POST /predict/heart/batch",
    "POST /predict/digit",
    "POST /predict/digit/batch",
}


NEGATIVE_DATA_STATUSES = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

SEEN: defaultdict[str, Counter[int]] = defaultdict(Counter)


def documented_openapi() -> dict[str, Any]:
    """The OpenAPI document of an app with the admin route on, as `/schema/openapi.json` serves it.

    Built in-process at collection time, because schemathesis's fixture-based loader
    (`schemathesis.pytest.from_fixture`) does not run on pytest 9 (it sets `Item._nodeid`, which
    pytest 9 removed). `test_the_fuzzed_document_is_the_one_the_process_serves` proves that the
    running process serves exactly this document, so the contract fuzzed is the one served.
    """
    app = create_app(Settings(admin_token=SecretStr(ADMIN_TOKEN)))
    return json.loads(encode_json(app.openapi_schema.to_schema()))


def canonical(document: Any) -> Any:
    """The document with each `parameters` list in one order (Litestar's order can vary by process)."""
    if isinstance(document, dict):
        return {
            key: sorted(map(canonical, value), key=lambda p: (p.get("in"), p.get("name")))
            if key == "parameters" and isinstance(value, list)
            else canonical(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [canonical(item) for item in document]
    return document


DOCUMENT = documented_openapi()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": EXAMPLES, "deterministic": not EXPLORE, "database": "none"},
            # schemathesis's list of refusals, plus 413: a body the document calls invalid for having too many
            # instances can also be over the size limit (1,000+ large images), and 413 is that refusal,
            # documented for these routes. (Found by `make fuzz`, seed 7.)
            "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_DATA_STATUSES}},
        }
    ),
)


def test_the_fuzzed_document_is_the_one_the_process_serves(live_service: LiveService) -> None:
    served = live_service.client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert canonical(served.json()) == canonical(DOCUMENT)
    assert "/admin/reload" in DOCUMENT["paths"], "the admin route is documented when it exists"


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=not EXPLORE, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_documented_contract(case: Any, live_service: LiveService) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if case.path.startswith("/admin") else None
    operation = case.operation.label
    checks = [*CHECKS, negative_data_rejection] if operation in REJECTS_INVALID else CHECKS
    response = case.call_and_validate(base_url=live_service.url, checks=checks, headers=headers, timeout=60)
    # keyed by the documented operation (the coverage phase also tries undocumented methods on it)
    label = case.operation.label if case.method.upper() == case.operation.method.upper() else "other methods"
    SEEN[label][response.status_code] += 1


@pytest.fixture(scope="module", autouse=True)
def report(live_service: LiveService) -> Iterator[None]:
    """After the module: the table of requests per operation and the statuses they got, and the
    process that took them all is still the same, healthy one."""
    yield
    rows = [
        (operation, str(sum(statuses.values())), ", ".join(f"{s} × {n}" for s, n in sorted(statuses.items())))
        for operation, statuses in sorted(SEEN.items())
    ]
    total = sum(sum(statuses.values()) for statuses in SEEN.values())
    mode = f"FUZZ_EXAMPLES={EXAMPLES}, FUZZ_SEED={SEED}" if EXPLORE else f"CI: {EXAMPLES} examples, derandomised"
    rows.append(("all operations", str(total), mode))
    write_table("fuzz-openapi", "Schema-driven fuzzing (schemathesis)", ("operation", "requests", "statuses"), rows)
    live_service.assert_still_healthy()
