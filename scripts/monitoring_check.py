#!/usr/bin/env python3
"""Prepares and cross-checks the monitoring files; scripts/monitoring_check.sh runs promtool.

    monitoring_check.py OUT_DIR

Writes OUT_DIR/dashboard-rules.yml (one recording rule per Grafana query, Grafana's own
variables replaced by fixed values) and OUT_DIR/adapter-rules.yml (the prometheus-adapter
query, its template filled in), for `promtool check rules`. Then checks, failing on any miss:
  - every metric name the code emits has help text in src/telemetry.rs;
  - every metric a rule, a dashboard query or the adapter reads is one the code emits, one the
    rules record, or a standard metric listed in STANDARD below;
  - the adapter's metric name is the one the api HPA asks for.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MON = ROOT / "monitoring"
# Metrics from outside Concord that the rules and dashboard may read.
STANDARD = {
    "up",  # Prometheus, per target
    "kubelet_volume_stats_available_bytes",  # kubelet
    "kubelet_volume_stats_capacity_bytes",
}
# Grafana's built-in variables, replaced by values a rule file accepts.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan", "atan2",
}
failures = []


def fail(message):
    failures.append(message)


def code_metrics():
    """Metric names the code records, with the histogram series they expand to."""
    names, histograms = set(), set()
    consts = {}
    for path in ROOT.glob("**/src/**/*.rs"):
        if "target" in path.parts:
            continue
        text = path.read_text()
        for name, value in re.findall(r'const ([A-Z_]+): &str = "(concord_[a-z0-9_]+)"', text):
            consts[name] = value
        for kind, arg in re.findall(r'(?<![a-z_])(counter|gauge|histogram)!\(\s*([A-Za-z_:"][^,)]*)', text):
            arg = arg.strip()
            m = re.fullmatch(r'"(concord_[a-z0-9_]+)"', arg)
            value = m.group(1) if m else consts.get(arg.split("::")[-1])
            if value is None:
                # A const defined in a file not read yet: resolved in the second pass below.
                names.add(("?", kind, arg.split("::")[-1]))
                continue
            names.add(value)
            if kind == "histogram":
                histograms.add(value)
    resolved = set()
    for n in names:
        if isinstance(n, tuple):
            _, kind, const = n
            if const not in consts:
                fail(f"metric name constant {const} not found")
                continue
            resolved.add(consts[const])
            if kind == "histogram":
                histograms.add(consts[const])
        else:
            resolved.add(n)
    return resolved, histograms


def described_metrics():
    text = (ROOT / "src/telemetry.rs").read_text()
    return set(re.findall(r'describe_(?:counter|gauge|histogram)!\(\s*"(concord_[a-z0-9_]+)"', text))


def metric_names(expr):
    """Metric names an expression reads (a small tokenizer, not a full PromQL parser)."""
    names = set()
    # __name__ regex matchers: expand their alternatives.
    for regex in re.findall(r'__name__\s*=~\s*"([^"]*)"', expr):
        names |= expand(regex)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        after = text[m.end():].lstrip()
        if after.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or not re.search(r"[_:]", word) and word != "up":
            continue
        names.add(word)
    return names


def expand(regex):
    """`a_(b|c)_d|e` → {a_b_d, a_c_d, e}; one level of groups is all the rules use."""
    parts, depth, cur = [], 0, ""
    for ch in regex:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = set()
    for p in parts:
        m = re.fullmatch(r"([^()]*)\(([^()]*)\)([^()]*)", p)
        if m:
            out |= {m.group(1) + alt + m.group(3) for alt in m.group(2).split("|")}
        elif re.fullmatch(r"[A-Za-z0-9_:]+", p):
            out.add(p)
        else:
            fail(f"cannot expand __name__ regex part {p!r}")
    return out


def dashboard_exprs(dashboard):
    def walk(panels):
        for p in panels:
            yield from walk(p.get("panels", []))
            for t in p.get("targets", []):
                if "expr" in t:
                    yield p.get("title", "?"), t["expr"]
    return list(walk(dashboard.get("panels", [])))


def main():
    out = Path(sys.argv[1])
    emitted, histograms = code_metrics()
    if len(emitted) < 10:
        fail(f"only {len(emitted)} metric names found in the code; has the recording style changed?")
    described = described_metrics()
    for name in sorted(emitted - described):
        fail(f"{name} is emitted but has no describe_*! in src/telemetry.rs (no # HELP line)")
    for name in sorted(described - emitted):
        fail(f"src/telemetry.rs describes {name}, which the code never records")
    readable = set(emitted) | STANDARD
    for h in histograms:
        readable |= {f"{h}_bucket", f"{h}_sum", f"{h}_count"}
    readable -= histograms  # a histogram has no series under its bare name

    rule_files = sorted(MON.glob("*rules.yml"))
    recorded, exprs = set(), []
    for f in rule_files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recorded.add(rule["record"])
                exprs.append((f"{f.name}: {rule.get('record') or rule.get('alert')}", rule["expr"]))
    readable |= recorded

    dashboard = json.loads((MON / "grafana-dashboard.json").read_text())
    queries = dashboard_exprs(dashboard)
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        fail("dashboard panel ids are not unique")
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    for text in re.findall(r'"uid": "\$\{(\w+)\}"', json.dumps(dashboard)):
        if text not in variables:
            fail(f"dashboard uses datasource variable {text}, which it does not define")
    if not queries:
        fail("the dashboard has no queries")
    rules = []
    for i, (title, expr) in enumerate(queries):
        filled = expr
        for var, value in GRAFANA_VARS.items():
            filled = filled.replace(var, value)
        if "$" in filled:
            fail(f"dashboard panel {title!r}: unknown variable in {expr!r}")
        rules.append({"record": f"dashboard:query_{i}", "expr": filled})
        exprs.append((f"dashboard: {title}", filled))
    (out / "dashboard-rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))

    adapter = yaml.safe_load((MON / "prometheus-adapter.yaml").read_text())
    adapter_rules = []
    for i, r in enumerate(adapter["rules"]):
        series = re.match(r"[a-z_:][a-z0-9_:]*", r["seriesQuery"]).group(0)
        query = (r["metricsQuery"].replace("<<.Series>>", series)
                 .replace("<<.LabelMatchers>>", 'namespace="concord",pod=~"concord-api-.*"')
                 .replace("<<.GroupBy>>", "pod"))
        adapter_rules.append({"record": f"adapter:rule_{i}", "expr": query})
        exprs.append((f"prometheus-adapter: {r['name']['as']}", query))
        exprs.append((f"prometheus-adapter seriesQuery {i}", r["seriesQuery"]))
    (out / "adapter-rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "adapter", "rules": adapter_rules}]}, sort_keys=False))
    served = {r["name"]["as"] for r in adapter["rules"]}
    hpa = [d for d in yaml.safe_load_all((ROOT / "k8s/base/api.yaml").read_text())
           if d and d["kind"] == "HorizontalPodAutoscaler"]
    for h in hpa:
        for m in h["spec"]["metrics"]:
            if m["type"] == "Pods" and m["pods"]["metric"]["name"] not in served:
                fail(f"HPA {h['metadata']['name']} asks for {m['pods']['metric']['name']}, "
                     f"prometheus-adapter serves {sorted(served)}")
    if not hpa:
        fail("no HorizontalPodAutoscaler in k8s/base/api.yaml")

    for where, expr in exprs:
        for name in sorted(metric_names(expr) - readable):
            fail(f"{where}: reads {name}, which nothing exports")

    for f in failures:
        print(f"FAIL {f}")
    if failures:
        sys.exit(1)
    print(f"ok: {len(emitted)} metrics emitted and described; {len(exprs)} expressions "
          f"({len(queries)} dashboard queries) read only known metrics")


if __name__ == "__main__":
    main()
