"""The chart's PromQL as tests see it: every Grafana panel and alert expression,
rendered by the real helm and parsed by a real PromQL parser (promql-parser, a
binding of the Rust parser Prometheus-compatible databases use), down to the
series selectors each reads.

Why parse rather than grep: a regex finds names in label values and legends,
misses a selector with `__name__`, and cannot say which matchers a selector
carries; the parser also refuses an expression Prometheus would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import promql_parser

from tests.harness.helm import Helm, find

# Both monitoring objects on: the dashboard's ConfigMap and the PrometheusRule.
MONITORING_ON = {"grafanaDashboard.enabled": "true", "prometheusRule.enabled": "true"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Selector:
    """One series selector: its metric name and label matchers (label → (op, value))."""

    metric: str
    matchers: Mapping[str, tuple[str, str]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Query:
    """One expression of the chart: where it is (panel or alert) and what it reads."""

    where: str
    expr: str
    selectors: tuple[Selector, ...]


def selectors(expr: str) -> tuple[Selector, ...]:
    """Every series selector in `expr`; ValueError if it is not valid PromQL."""
    found: list[Selector] = []
    for node in _nodes(promql_parser.parse(expr)):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name: (_op(m.op), m.value) for m in node.matchers.matchers}
            name = node.name or matchers.get("__name__", ("", ""))[1]
            if not name:
                raise ValueError(f"a selector without a metric name in {expr!r}")
            found.append(Selector(metric=name, matchers=matchers))
    return tuple(found)


_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    """The matcher's operator as PromQL spells it (MatchOp compares, but does not hash)."""
    return next(text for known, text in _OPS if op == known)


def _nodes(node: promql_parser.Expr) -> Iterator[promql_parser.Expr]:
    """`node` and everything under it, depth first."""
    yield node
    children: Sequence[promql_parser.Expr | None]
    match node:
        case promql_parser.MatrixSelector():
            children = [node.vector_selector]
        case promql_parser.AggregateExpr():
            children = [node.expr, node.param]
        case promql_parser.BinaryExpr():
            children = [node.lhs, node.rhs]
        case promql_parser.Call():
            children = list(node.args)
        case promql_parser.ParenExpr() | promql_parser.UnaryExpr() | promql_parser.SubqueryExpr():
            children = [node.expr]
        case (
            promql_parser.VectorSelector()
            | promql_parser.NumberLiteral()
            | promql_parser.StringLiteral()
        ):
            children = []
        case _:
            raise TypeError(f"unknown PromQL node {type(node).__name__}: {node}")
    for child in children:
        if child is not None:
            yield from _nodes(child)


def _query(where: str, expr: str) -> Query:
    return Query(where=where, expr=expr, selectors=selectors(expr))


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[Query]:
    """Every target of every panel of a Grafana dashboard's JSON model."""
    return [
        _query(f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
    ]


def rule_queries(rule: Mapping[str, Any]) -> list[Query]:
    """Every alert (and recording rule) expression of a PrometheusRule."""
    return [
        _query(f"alert {item.get('alert') or item.get('record')}", item["expr"])
        for group in rule["spec"]["groups"]
        for item in group["rules"]
    ]


@dataclass(frozen=True, kw_only=True, slots=True)
class Rendered:
    """The chart's monitoring objects, rendered with both switched on."""

    dashboard: dict[str, Any]
    rule: dict[str, Any]

    def queries(self) -> list[Query]:
        return dashboard_queries(self.dashboard) + rule_queries(self.rule)


def render(
    helm: Helm,
    *,
    set_values: Mapping[str, str] = {},
    set_strings: Mapping[str, str] = {},
    namespace: str = "eni-system",
) -> Rendered:
    """`helm template` with the dashboard and the rule on; their parsed contents."""
    objects = helm.manifests(
        set_values={**MONITORING_ON, **set_values}, set_strings=set_strings, namespace=namespace
    )
    (config_map,) = [
        o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")
    ]
    (rule,) = find(objects, "PrometheusRule")
    (model,) = config_map["data"].values()
    return Rendered(dashboard=json.loads(model), rule=rule)
