"""Contract: schemathesis generates requests (valid and invalid) for every operation of the live schema, sends
them with a token to a live server, and checks that none is answered 5xx or breaks the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db(transaction=True)

# Examples per operation and generation mode: enough to try every parameter's edges, kept to a ~2 minute run.
EXAMPLES = 12


@pytest.fixture
def token(catalogue, django_user_model) -> str:
    owner = django_user_model.objects.create_superuser("contract", password="pw-for-tests")
    return make_token(owner, "schemathesis")


@pytest.fixture
def live_schema(live_server, token):
    auth = {"Authorization": f"Bearer {token}"}
    loaded = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema?format=json", headers=auth)
    loaded.config.update(base_url=live_server.url)
    return loaded


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_no_operation_answers_5xx_or_outside_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
