"""The shipped Grafana dashboard and Prometheus rules parse and use only metrics /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.api.test_api_metrics import scrape

pytestmark = pytest.mark.django_db

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bannotation_[a-z_]+")


def family(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


def expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "annotation-fleet.json").read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "annotation-fleet-alerts.yml").read_text())
    found += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return found


def test_dashboard_and_rules_name_only_exported_metrics(catalogue):
    exported = set(scrape())
    used = {family(name) for expr in expressions() for name in METRIC.findall(expr)}
    assert len(used) >= 10 and used <= exported, used - exported
