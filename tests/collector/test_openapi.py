"""The OpenAPI document of /api/v1 (collector/web/openapi.json, served at
/api/v1/openapi.json) against the real service: schemathesis generates requests from it, a
bounded number per operation (valid ones, and ones the document forbids), and checks that
none gets a 5xx and that every response matches the document (status, content type, body). (The requests are made from
the test's own thread, so each operation is one test of `EXAMPLES` cases; schemathesis'
pytest plugin does not load under this pytest.)

The service holds a real pair's lab logs (the same feed as the browser test), so the pages
have rows to validate, not only empty lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.test_web import Fed, feed

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (pip install '.[test]')")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

DOCUMENT = Path(__file__).resolve().parents[2] / "collector" / "web" / "openapi.json"
EXAMPLES = 100
"""Generated requests per operation: enough to reach the 400 paths, bounded for `make test`."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
"""No 5xx, and each answer as documented. Not schemathesis' checks of which inputs are accepted:
the API keeps today's leniency (a blank parameter is an absent one, as `parse_qs` gave it),
and the document cannot say that `since` must precede `until` (a 400)."""
SCHEMA = schemathesis.openapi.from_path(str(DOCUMENT))
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    yield from feed(tmp_path_factory, "o")


def test_the_service_serves_this_document(served: Fed) -> None:
    status, body = served.serve.get("/api/v1/openapi.json")
    assert status == 200 and body == DOCUMENT.read_bytes()


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_answers_as_documented(served: Fed, label: str) -> None:
    operation = OPERATIONS[label]
    base = served.serve.url("/api/v1")
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base, checks=CHECKS)

    check()
