"""Property tests of the query API from its own OpenAPI document (schemathesis): generated requests to every
operation, with an admin key, against a seeded database; no 5xx and no response outside the documented schema.
Bounded: a fixed number of examples per operation, no shrinking deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ioc.db.migrate import migrate
from services.api.keys import create_key
from simulators.fleet import build_fleet
from testkit.apiserver import ApiServer
from testkit.city import seed
from testkit.databases import create_database, drop_database
from tests.conftest import PG_SERVER

pytestmark = pytest.mark.integration

# Examples per operation: ~20 operations × this bounds the run to tens of seconds on a busy 2-core machine.
EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    dsn = create_database(PG_SERVER)
    try:
        migrate(dsn, "off")
        fleet = build_fleet("smoke")
        end = int(time.time()) // 3600 * 3600
        seed(dsn, fleet, end - 6 * 3600, end)
        with psycopg.connect(dsn) as conn:
            key = create_key(conn, "schemathesis", "admin")[1]
        with ApiServer(dsn) as api:
            yield api.url, key
    finally:
        drop_database(PG_SERVER, dsn)


def test_every_operation_answers_within_its_schema(server: tuple[str, str]) -> None:
    url, key = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS, timeout=30)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
