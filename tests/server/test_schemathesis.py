"""Property-based API tests generated from the app's own OpenAPI schema: no input makes a 500.

Each operation gets a bounded number of generated requests, valid ones and invalid ones, against
the real app over a copy of the widgets shelf. New crawls (POST /api/sources) are generated against
a read-only server, so that generated URLs never reach the network; every other operation runs on
a writable one.

(The operations are parametrized here rather than by `schemathesis.pytest.from_fixture`, whose
lazy loader reads a node attribute that pytest 9 no longer has.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from docshelf.server import api
from docshelf.server.app import create_app
from docshelf.server.state import ServerConfig

EXAMPLES = 60
"""Generated requests per operation: enough to reach the edges of every parameter in well under a minute."""

ROUTES = [route for route in api.router.routes if isinstance(route, APIRoute)]
OPERATIONS = sorted((method, f"/api{route.path}") for route in ROUTES for method in route.methods)
CONSTRAINED = sorted(
    (method, f"/api{route.path}")
    for route in ROUTES
    for method in route.methods
    if route.dependant.query_params or route.body_field
)
"""Operations whose inputs can be invalid (a free-text path parameter cannot): they get bad requests too."""
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in CONSTRAINED
]
CRAWL = ("POST", "/api/sources")


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_generated_request_is_a_server_error(
    shelf_copy: Path, method: str, path: str, mode: GenerationMode
) -> None:
    # Schemathesis runs the app's lifespan itself; MCP is left out as it is not in the OpenAPI schema.
    app = create_app(ServerConfig(db=str(shelf_copy), read_only=(method, path) == CRAWL, mcp=False))
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    call()


def test_every_api_operation_is_in_the_schema(shelf_copy: Path) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(ServerConfig(db=str(shelf_copy), mcp=False))
    )
    documented = sorted((op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations())
    assert documented == OPERATIONS
