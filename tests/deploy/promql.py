"""The PromQL of the shipped Grafana dashboard and alert rules, and the metric names it reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "filestream.json"
RULES = DEPLOY / "prometheus" / "rules.yml"

# Grafana's own query for a variable's values: label_values(SELECTOR, LABEL).
_LABEL_VALUES_RE = re.compile(r"^label_values\((.+),\s*\w+\)$")
# What Grafana puts in place of the dashboard's variables before it sends a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$job": "filestream"}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every panel target's expression and variable query's selector, with Grafana's variables filled in."""
    expressions = [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"]
        label_values = _LABEL_VALUES_RE.match(query)
        expressions.append(label_values.group(1) if label_values else query)
    return [fill_variables(expression) for expression in expressions]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def fill_variables(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    return expression


def rule_expressions(path: Path) -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def metric_names(expression: str) -> set[str]:
    """The metric name of every series selector in the expression."""
    names: set[str] = set()
    pending = [promql_parser.parse(expression)]
    while pending:
        node = pending.pop()
        if isinstance(node, promql_parser.VectorSelector):
            if node.name is None:
                raise ValueError(f"a selector without a metric name in {expression!r}: name the metric")
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            pending.append(node.vector_selector)
        elif isinstance(node, promql_parser.Call):
            pending.extend(node.args)
        elif isinstance(node, promql_parser.BinaryExpr):
            pending += [node.lhs, node.rhs]
        elif isinstance(node, promql_parser.AggregateExpr):
            pending += [node.expr] + ([node.param] if node.param is not None else [])
        elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
            pending.append(node.expr)
    return names
