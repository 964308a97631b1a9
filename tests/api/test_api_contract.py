"""Contract: schemathesis generates requests (valid and invalid) for every operation of the schema, sends them with
a token to a live server, and checks that none is answered 5xx or breaks the schema. The schema is the one the
live server serves (checked first)."""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import make_token

pytestmark = pytest.mark.django_db(transaction=True)

# Examples per operation and generation mode: enough to try every parameter's edges, kept to a ~2 minute run.
EXAMPLES = 12
SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(SCHEMA)


@pytest.fixture
def token(catalogue, django_user_model) -> str:
    owner = django_user_model.objects.create_superuser("contract", password="pw-for-tests")
    return make_token(owner, "schemathesis")


def test_the_live_server_serves_the_schema_under_test(live_server, token):
    import httpx

    served = httpx.get(f"{live_server.url}/api/v1/schema?format=json", headers={"Authorization": f"Bearer {token}"})
    assert served.status_code == 200 and served.json()["paths"].keys() == SCHEMA["paths"].keys()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_no_operation_answers_5xx_or_outside_its_schema(case, live_server, token):
    # A generated upload is any bytes: its content, not its shape, decides whether it is a corpus, so refusing it
    # (422 with the file's problems) is right even for a request the schema admits.
    uploads = ("/api/v1/corpora/import", "/api/v1/references")
    content_decides = [positive_data_acceptance] if case.operation.path in uploads and case.method == "POST" else []
    case.call_and_validate(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"},
                           excluded_checks=content_decides)
