"""The chart's monitoring objects, rendered by the real helm: the PrometheusRule
(off by default; each alert with a runbook section in docs/runbooks.md) and the
Grafana dashboard, whose every expression parses as PromQL and reads only the
series of one release (the rule: its namespace; the dashboard: its job and
namespace variables), so other controllers' series never mix in.

That each metric these expressions name is really exported is checked against a
scrape of a real run: tests/integration/test_monitoring_queries.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness.helm import REPO, Helm, find
from tests.harness.monitoring import Query, render, selectors

RUNBOOKS = REPO / "docs" / "runbooks.md"
ALERTS = {
    "ENIControllerNodeENINotReady",
    "ENIControllerENIsNotAsWanted",
    "ENIControllerOrphansRising",
    "ENIControllerEC2Throttled",
    "ENIControllerCircuitOpen",
}


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the document's `##` headings."""
    return {
        re.sub(r"[^a-z0-9 _-]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in markdown.splitlines()
        if line.startswith("## ")
    }


def _alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["alert"]: item for group in rule["spec"]["groups"] for item in group["rules"]}


def test_monitoring_objects_are_off_by_default(helm: Helm) -> None:
    objects = helm.manifests()
    assert find(objects, "PrometheusRule") == []
    assert [o for o in find(objects, "ConfigMap") if "dashboard" in o["metadata"]["name"]] == []


def test_every_alert_has_its_runbook_section(helm: Helm) -> None:
    anchors = _anchors(RUNBOOKS.read_text())
    rule = render(helm).rule
    alerts = _alerts(rule)
    assert set(alerts) == ALERTS
    for name, alert in alerts.items():
        anchor = name.lower()
        assert anchor in anchors, f"docs/runbooks.md has no section {name}"
        assert alert["annotations"]["runbook"] == f"docs/runbooks.md#{anchor}"
        assert "runbook_url" not in alert["annotations"]  # no base URL set
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert re.fullmatch(r"[0-9]+[smh]", alert["for"]), alert["for"]
    # and no runbook section for an alert that does not exist
    assert {a for a in anchors if a.startswith("enicontroller")} == {a.lower() for a in ALERTS}


def test_values_reach_the_alerts(helm: Helm) -> None:
    base = "https://runbooks.example.com/eni/runbooks.md"
    rendered = render(
        helm,
        set_values={
            "prometheusRule.runbookBaseUrl": base,
            "prometheusRule.notReadyFor": "30m",
            "prometheusRule.orphansPerHour": "4",
            "prometheusRule.alertLabels.team": "platform",
            "prometheusRule.labels.release": "kube-prometheus-stack",
        },
    )
    assert rendered.rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = _alerts(rendered.rule)
    for name, alert in alerts.items():
        assert alert["annotations"]["runbook_url"] == f"{base}#{name.lower()}"
        assert alert["labels"]["team"] == "platform"
    assert alerts["ENIControllerNodeENINotReady"]["for"] == "30m"
    assert alerts["ENIControllerOrphansRising"]["expr"].rstrip().endswith("> 4")


def _unscoped(queries: list[Query], wanted: dict[str, tuple[str, str]]) -> list[str]:
    """Every selector of `queries` that lacks one of the `wanted` matchers."""
    return [
        f"{q.where}: {s.metric}"
        for q in queries
        for s in q.selectors
        if any(s.matchers.get(label) != matcher for label, matcher in wanted.items())
    ]


def test_every_rule_reads_only_its_release(helm: Helm) -> None:
    rendered = render(
        helm, namespace="network", set_strings={"prometheusRule.selector": 'job="eni"'}
    )
    queries = [q for q in rendered.queries() if q.where.startswith("alert ")]
    assert len(queries) == len(ALERTS)
    assert _unscoped(queries, {"namespace": ("=", "network"), "job": ("=", "eni")}) == []
    # without a selector, the namespace alone
    default = [q for q in render(helm).queries() if q.where.startswith("alert ")]
    assert _unscoped(default, {"namespace": ("=", "eni-system")}) == []
    assert all("job" not in s.matchers for q in default for s in q.selectors)


def test_every_dashboard_query_is_scoped_by_job_and_namespace(helm: Helm) -> None:
    rendered = render(helm)
    queries = [q for q in rendered.queries() if q.where.startswith("panel ")]
    assert len(queries) >= 30
    assert all(q.selectors for q in queries)
    assert _unscoped(queries, {"job": ("=", "$job"), "namespace": ("=", "$namespace")}) == []
    variables = {v["name"]: v for v in rendered.dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    # the job and namespace to choose from are those of the controller's own series
    job = variables["job"]["query"]["query"]
    namespace = variables["namespace"]["query"]["query"]
    assert job == "label_values(eni_controller_build_info, job)"
    assert namespace == 'label_values(eni_controller_build_info{job="$job"}, namespace)'
    assert not variables["job"]["multi"]
    assert not variables["namespace"]["multi"]


def test_the_parser_refuses_what_prometheus_refuses() -> None:
    """The checks above stand on the parser: it must not take just anything."""
    assert [s.metric for s in selectors('sum by (a) (rate(x_total{a="1"}[5m])) / y')] == [
        "x_total",
        "y",
    ]
    assert [s.metric for s in selectors('{__name__="z"} or vector(0)')] == ["z"]
    for bad in ("sum(rate(x[5m])", "rate(x)", 'x{a="1"', "x{a=1}", "sum by (a (x)"):
        with pytest.raises(ValueError):  # noqa: PT011  # the parser's message varies
            selectors(bad)
