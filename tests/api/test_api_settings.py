"""The API's settings are checked like every other: a bad value is a system-check error naming it."""

from __future__ import annotations

import pytest

from tests.helpers import run_check


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("API_TOKEN_RATE", "lots", "lots"), ("API_TOKEN_RATE", "0/min", "0/min"),
    ("API_TOKEN_RATE", "10/fortnight", "10/fortnight"), ("METRICS_ALLOW", "nonsense", "nonsense"),
    ("METRICS_ALLOW", "10.0.0.0/8,300.1.1.1", "300.1.1.1"),
])
def test_a_bad_api_setting_is_reported_by_the_checks_naming_the_bad_value(tmp_path, variable, value, named):
    result = run_check(tmp_path, **{variable: value})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{variable}={named!r}" in result.stderr and "annotation_site.E001" in result.stderr


def test_good_api_settings_pass(tmp_path):
    result = run_check(tmp_path, API_TOKEN_RATE="30/s", METRICS_ALLOW="10.0.0.0/8, 192.168.1.7", METRICS_TOKEN="x")
    assert result.returncode == 0, result.stderr
