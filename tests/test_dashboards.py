"""kfleet's Grafana dashboards (dashboards/*.json), checked without Grafana.

StaticTest (ctest: dashboards_static, label unit): every dashboard follows the rules of
docs/dashboards.md, equals what dashboards/generate.py writes, has only PromQL that promtool
accepts, and reads only metrics kfleet exports (common/metric_names.cc for host samples,
docs/metrics.md for the controller's own, each of those found in the controller's sources).

IntegrationTest (ctest: integration_dashboards, label integration): a controller and two agents on
loopback, a command OOM-killed for real under a 32 MiB memory limit, one with output and a test
step whose three tests pass, fail and skip, two schedules (one OOM-killed at every run, one
healthy), scraped every second by a real Prometheus server (Debian's); then every panel's,
annotation's and variable's query runs through Prometheus' HTTP API over the test's window and
must return data, except the few panels listed in EXPECTED_EMPTY with the reason. Each dashboard
is drawn by dashboards/render.py into $KFLEET_BUILD_DIR/dashboards/NAME.png.
"""
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD_DIR = os.path.join(REPO, "dashboards")
GENERATOR = os.path.join(DASHBOARD_DIR, "generate.py")
GRAFANA_DIR = os.path.join(REPO, "deploy", "grafana", "provisioning")
PROMETHEUS_YML = os.path.join(REPO, "deploy", "prometheus", "prometheus.yml")
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
RENDER = os.path.join(DASHBOARD_DIR, "render.py")
# Debian's python3-matplotlib is installed for Debian's python3, which may not be the first python3
# on PATH.
RENDER_PYTHON = "/usr/bin/python3"

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge"}
# Panels that show one value per series: their queries are instant, evaluated at the range's end.
INSTANT_PANEL_TYPES = {"stat", "table", "bargauge"}
RANGE_FUNCTIONS = ("rate", "irate", "increase")
# kfleet_* metrics with a series per host, labelled `host` and with the host's labels as the node_*
# samples are (kfleet_host_samples is not one: it counts the controller's series). The other
# kfleet_* metrics are the controller's own and carry only the Prometheus job.
PER_HOST_KFLEET_METRICS = {"kfleet_host_up", "kfleet_host_boot_info", "kfleet_kernel_events_total"}
# The schedule metrics (docs/metrics.md, Schedules) have a series per host and schedule, labelled
# `host` and `schedule` only: they are selected by job, host and schedule (the host variable lists
# the hosts of the selected pools).
SCHEDULE_METRIC_PREFIX = "kfleet_schedule_"

# Panels whose queries return nothing in IntegrationTest, with why. Each must really be empty
# there: one that gets data fails the test until it is taken off this list.
EXPECTED_EMPTY = {
    ("kfleet-jobs.json", "Guest provider calls"):
        "kfleet_provider_operations_total has no series until a guest pool's provider (libvirt, "
        "exec) is called, and the test runs no guests",
}
# The mail-host dashboard's units panels read kfleet_unit_*, which only an agent with
# --watch-units on a host running systemd sends: this machine does not, so they are empty here, and
# tests/test_debian_guest.py runs the same queries against a Prometheus scraping a debian guest's
# watched units (UNIT_PANELS).
UNIT_PANELS = ("Units: last run, intervals ago", "Units: last result", "Units: runs in time range",
               "Units: duration of the last run", "Units: peak memory of the last run",
               "Units: OOM kills")
for _title in UNIT_PANELS:
    EXPECTED_EMPTY[("kfleet-mailhost.json", _title)] = (
        "kfleet_unit_* come from kfleet-agent --watch-units on a host running systemd; "
        "checked in a debian guest (tests/test_debian_guest.py)")

# Values of the template variables when checking expressions statically.
STATIC_VALUES = {"job": "kfleet", "pool": "pool-a|pool-b", "host": "host-1",
                 "schedule": "fetch|index", "interval": "300",
                 "__rate_interval": "1m", "__interval": "15s", "__range": "6h"}


# --- reading dashboards ------------------------------------------------------------------------

def dashboard_files():
    return sorted(glob.glob(os.path.join(DASHBOARD_DIR, "*.json")))


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def all_panels(doc):
    """Every panel, those inside collapsed rows included."""
    for p in doc.get("panels", []):
        yield p
        for inner in p.get("panels", []) or []:
            yield inner


def data_panels(doc):
    return [p for p in all_panels(doc) if p.get("type") != "row"]


def variable(doc, name):
    return next((v for v in doc.get("templating", {}).get("list", []) if v.get("name") == name),
                None)


def variable_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


class Query:
    """One PromQL expression of a dashboard: a panel's target, an annotation, or the series
    selector of a label_values() variable."""

    def __init__(self, file, where, expr, instant=False, panel=None, label=None):
        self.file = file
        self.where = where  # "panel 'Hosts' query C", "annotation 'OOM kills'", "variable 'host'"
        self.expr = expr
        self.instant = instant
        self.panel = panel
        self.label = label  # for a variable: the label whose values it lists

    def __str__(self):
        return f"{os.path.basename(self.file)}: {self.where}"


def queries(path, doc):
    out = []
    for p in data_panels(doc):
        for t in p.get("targets", []):
            out.append(Query(path, f"panel {p.get('title')!r} query {t.get('refId')}",
                             t.get("expr", ""), bool(t.get("instant")), p))
    for a in doc.get("annotations", {}).get("list", []):
        out.append(Query(path, f"annotation {a.get('name')!r}", a.get("expr", "")))
    for v in doc.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        m = LABEL_VALUES.match(variable_query(v).strip())
        out.append(Query(path, f"variable {v.get('name')!r}", m.group(1) if m else "",
                         label=m.group(2) if m else None))
    return out


def substitute(expr, values):
    """The expression with $var and ${var} replaced by `values`; KeyError names an unknown one."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


# --- reading PromQL ----------------------------------------------------------------------------

def _blank_strings(expr):
    """The expression with the text of string literals replaced by x's, positions unchanged."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + "x" * (len(m.group(0)) - 2) + '"', expr)


def _blank(expr, pattern):
    return re.sub(pattern, lambda m: " " * len(m.group(0)), expr)


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}
IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)")


def metric_uses(expr):
    """(name, position) of every metric selector in `expr`: identifiers that are not functions,
    keywords, label names (in matchers and by/on lists) or parts of strings and durations."""
    s = _blank_strings(expr)
    s = _blank(s, r"\{[^}]*\}")   # label matchers
    s = _blank(s, r"\[[^\]]*\]")  # ranges and subqueries
    s = _blank(s, r"\$\{?\w+\}?")  # template variables: $interval is a number, not a metric
    s = _blank(s, r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
    out = []
    for m in IDENT.finditer(s):
        word = m.group(1)
        if word.lower() in PROMQL_WORDS or s[m.end():].lstrip().startswith("("):
            continue
        out.append((word, m.start()))
    return out


def metric_names(expr):
    return {name for name, _ in metric_uses(expr)}


def matchers_at(expr, pos):
    """The label matchers written right after the metric name at `pos`, as one string."""
    m = re.match(r"[A-Za-z_:][\w:]*\s*\{([^}]*)\}", expr[pos:])
    return m.group(1) if m else ""


def calls(expr, functions):
    """(function, argument text, start) of every call of one of `functions`."""
    s = _blank_strings(expr)
    out = []
    for m in re.finditer(r"\b(%s)\s*\(" % "|".join(functions), s):
        depth, i = 1, m.end()
        while i < len(s) and depth:
            depth += {"(": 1, ")": -1}.get(s[i], 0)
            i += 1
        out.append((m.group(1), expr[m.end():i - 1], m.start()))
    return out


# --- what kfleet exports -----------------------------------------------------------------------

def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def exported_metric_names():
    """The metric names kfleet exports, derived from its sources: the host samples of
    common/metric_names.cc (the table the agent and the controller read) and the controller's own
    metrics documented in docs/metrics.md, each of which must appear as a string in the
    controller's sources. Histograms give their _bucket, _sum and _count series."""
    host = set(re.findall(r'\{"((?:node|kfleet)_\w+)",\s*k(?:Gauge|Counter|Untyped)\b',
                          read("common/metric_names.cc")))
    docs = read("docs/metrics.md")
    controller = {}
    for heading in ("## Controller metrics", "## Schedules"):
        section = docs.split(heading, 1)[1].split("\n## ", 1)[0]
        controller.update(re.findall(r"^\| `(kfleet_\w+)` \| (\w+) \|", section, re.M))
    sources = ""
    for path in glob.glob(os.path.join(REPO, "controller", "**", "*.cc"), recursive=True):
        if not path.endswith("_test.cc"):
            with open(path, encoding="utf-8") as f:
                sources += f.read()
    problems = [f"docs/metrics.md lists {name} but no controller source names it"
                for name in controller if f'"{name}"' not in sources]
    names = set(host)
    for name, kind in controller.items():
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
    # A parse that finds too little would let any name through unnoticed, or none: fail instead.
    for anchor in ("node_vmstat_oom_kill", "node_memory_MemAvailable_bytes",
                   "node_pressure_memory_waiting_seconds_total", "node_cpu_seconds_total"):
        if anchor not in host:
            problems.append(f"{anchor} not found in common/metric_names.cc: fix the parser")
    for anchor in ("kfleet_host_up", "kfleet_commands", "kfleet_dispatch_latency_seconds",
                   "kfleet_schedule_runs_total"):
        if anchor not in controller:
            problems.append(f"{anchor} not found in docs/metrics.md's controller or schedule "
                            f"tables")
    if len(host) < 50 or len(controller) < 12:
        problems.append(f"only {len(host)} host and {len(controller)} controller metrics parsed")
    return names, problems


def run_promtool(exprs):
    """promtool's verdict on the expressions as recording rules: (ok, output)."""
    with tempfile.TemporaryDirectory(prefix="kfleet-dashboards-") as tmp:
        path = os.path.join(tmp, "rules.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: kfleet-dashboards\n    rules:\n")
            for i, expr in enumerate(exprs):
                # A JSON string is a valid YAML double-quoted scalar.
                f.write(f"      - record: kfleet_dashboard_check:expr{i}\n"
                        f"        expr: {json.dumps(expr)}\n")
        p = subprocess.run([PROMTOOL, "check", "rules", path], capture_output=True, text=True,
                           timeout=120)
        return p.returncode == 0, (p.stdout + p.stderr).replace(path, "rules.yml")


def yaml_value(text, key):
    """The value of the first `key: value` line (no YAML parser in the standard library)."""
    m = re.search(r"^\s*%s:\s*([^\s#]+)" % re.escape(key), text, re.M)
    return m.group(1).strip("\"'") if m else None


class StaticTest(unittest.TestCase):
    """The committed dashboards, checked without Prometheus or Grafana."""

    @classmethod
    def setUpClass(cls):
        cls.docs = {}  # path: (text, parsed)
        for path in dashboard_files():
            with open(path, encoding="utf-8") as f:
                text = f.read()
            cls.docs[path] = (text, json.loads(text))

    def report(self, problems):
        """Fails with one line per problem."""
        if problems:
            self.fail(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems))

    def test_dashboards_exist(self):
        """Validates that the four dashboards are there and load as JSON."""
        names = sorted(os.path.basename(p) for p in self.docs)
        self.assertEqual(names, ["kfleet-fleet.json", "kfleet-host.json", "kfleet-jobs.json",
                                 "kfleet-mailhost.json"])

    def test_generator_output_is_committed(self):
        """Validates that dashboards/*.json are exactly what dashboards/generate.py writes."""
        with tempfile.TemporaryDirectory(prefix="kfleet-dashboards-") as out:
            p = subprocess.run([sys.executable, GENERATOR, "--out", out], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            generated = sorted(os.listdir(out))
            self.assertEqual(generated, sorted(os.path.basename(p) for p in self.docs),
                             "dashboards/ holds JSON files the generator does not write")
            problems = []
            for name in generated:
                with open(os.path.join(out, name), encoding="utf-8") as f:
                    if f.read() != self.docs[os.path.join(DASHBOARD_DIR, name)][0]:
                        problems.append(f"{name} differs from the generator's output; fix: "
                                        f"python3 dashboards/generate.py, and commit both")
            self.report(problems)

    def test_dashboard_settings(self):
        """Validates uid (unique, set), pinned schemaVersion, title, tags and that no dashboard
        needs an import-time datasource input (${DS_...})."""
        problems, uids = [], {}
        for path, (text, doc) in self.docs.items():
            name = os.path.basename(path)
            uid = doc.get("uid")
            if not uid or not re.fullmatch(r"[\w-]{1,40}", uid):
                problems.append(f"{name}: uid {uid!r}; fix: set a uid of at most 40 letters, "
                                f"digits, - or _")
            elif uid in uids:
                problems.append(f"{name}: uid {uid!r} is also {uids[uid]}'s; fix: make it unique")
            uids[uid] = name
            if doc.get("schemaVersion") != SCHEMA_VERSION:
                problems.append(f"{name}: schemaVersion {doc.get('schemaVersion')!r}; fix: pin it "
                                f"to {SCHEMA_VERSION}")
            if doc.get("id") is not None:
                problems.append(f"{name}: id {doc.get('id')!r}; fix: null (Grafana assigns it)")
            if not str(doc.get("title", "")).startswith("kfleet / "):
                problems.append(f"{name}: title {doc.get('title')!r}; fix: start with 'kfleet / '")
            if "kfleet" not in doc.get("tags", []):
                problems.append(f"{name}: no 'kfleet' tag; fix: add it (the dashboard links "
                                f"find each other by it)")
            if "DS_" in text or "__inputs" in doc:
                problems.append(f"{name}: uses an import-time datasource input (${{DS_...}} or "
                                f"__inputs); fix: use the datasource variable, "
                                f"{json.dumps(DS)}")
        self.report(problems)

    def test_variables(self):
        """Validates the template variables: one `datasource` variable of type datasource
        (query prometheus), and job, pool and host as label_values() queries on that datasource."""
        problems = []
        for path, (_, doc) in self.docs.items():
            name = os.path.basename(path)
            all_vars = doc.get("templating", {}).get("list", [])
            ds_vars = [v for v in all_vars if v.get("type") == "datasource"]
            if (len(ds_vars) != 1 or ds_vars[0].get("name") != "datasource"
                    or ds_vars[0].get("query") != "prometheus"):
                problems.append(f"{name}: needs exactly one variable `datasource` of type "
                                f"datasource with query 'prometheus', has {ds_vars!r}")
            for var in ("job", "pool", "host"):
                v = variable(doc, var)
                if v is None:
                    problems.append(f"{name}: no variable {var!r}; fix: add a label_values() "
                                    f"query variable")
                    continue
                m = LABEL_VALUES.match(variable_query(v).strip())
                if v.get("type") != "query" or not m or m.group(2) != var:
                    problems.append(f"{name}: variable {var!r} must be a query variable "
                                    f"label_values(SELECTOR, {var}), is {variable_query(v)!r}")
                if v.get("datasource") != DS:
                    problems.append(f"{name}: variable {var!r} datasource "
                                    f"{v.get('datasource')!r}; fix: {json.dumps(DS)}")
                if v.get("includeAll") and v.get("allValue") != ".*":
                    problems.append(f"{name}: variable {var!r} has All without allValue '.*'; "
                                    f"fix: set it, so that hosts without the label match too")
        self.report(problems)

    def test_panels(self):
        """Validates every panel: a known type, a title and a description, the datasource
        variable on the panel and each target, a unit, an id of its own and a place on the grid;
        stat, bar gauge and table queries are instant, time series queries range."""
        problems = []
        for path, (_, doc) in self.docs.items():
            name = os.path.basename(path)
            ids = set()
            for p in all_panels(doc):
                title = p.get("title") or f"(untitled, id {p.get('id')})"
                where = f"{name}: panel {title!r}"
                if p.get("id") in ids:
                    problems.append(f"{where}: id {p.get('id')} is used twice; fix: unique ids")
                ids.add(p.get("id"))
                grid = p.get("gridPos", {})
                if not (grid.get("w", 0) > 0 and grid.get("h", 0) > 0
                        and grid.get("x", -1) >= 0 and grid.get("x", 0) + grid["w"] <= 24):
                    problems.append(f"{where}: gridPos {grid!r} is off the 24-column grid")
                if p.get("type") == "row":
                    if p.get("targets"):
                        problems.append(f"{where}: a row has queries; fix: move them to a panel")
                    continue
                if p.get("type") not in PANEL_TYPES:
                    problems.append(f"{where}: type {p.get('type')!r}; fix: use one of "
                                    f"{sorted(PANEL_TYPES)}")
                if not p.get("title"):
                    problems.append(f"{where}: no title")
                if len(p.get("description", "")) < 20:
                    problems.append(f"{where}: no description; fix: say what it shows in a "
                                    f"kernel developer's words")
                if p.get("datasource") != DS:
                    problems.append(f"{where}: datasource {p.get('datasource')!r}; fix: "
                                    f"{json.dumps(DS)}")
                unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
                if not unit:
                    problems.append(f"{where}: no unit; fix: set fieldConfig.defaults.unit "
                                    f"(none, short, bytes, s, percentunit, ...)")
                targets = p.get("targets", [])
                if not targets:
                    problems.append(f"{where}: no queries")
                refs = [t.get("refId") for t in targets]
                if len(set(refs)) != len(refs):
                    problems.append(f"{where}: refIds {refs} repeat; fix: unique refIds")
                for t in targets:
                    tw = f"{where} query {t.get('refId')}"
                    if t.get("datasource") != DS:
                        problems.append(f"{tw}: datasource {t.get('datasource')!r}; fix: "
                                        f"{json.dumps(DS)}")
                    if not t.get("expr", "").strip():
                        problems.append(f"{tw}: empty expr")
                    instant = bool(t.get("instant")) and not t.get("range")
                    if p.get("type") in INSTANT_PANEL_TYPES and not instant:
                        problems.append(f"{tw}: a {p.get('type')} panel shows one value per "
                                        f"series; fix: instant: true, range: false")
                    if p.get("type") == "timeseries" and instant:
                        problems.append(f"{tw}: a time series needs a range query; fix: "
                                        f"range: true, instant: false")
        self.report(problems)

    def test_annotations(self):
        """Validates the annotations (on the datasource variable, with a query) and that OOM kills
        are drawn as bars with the OOM-kill annotation on the same dashboard."""
        problems = []
        for path, (_, doc) in self.docs.items():
            name = os.path.basename(path)
            annotations = doc.get("annotations", {}).get("list", [])
            for a in annotations:
                if a.get("datasource") != DS or not a.get("expr") or not a.get("enable"):
                    problems.append(f"{name}: annotation {a.get('name')!r} needs datasource "
                                    f"{json.dumps(DS)}, an expr and enable: true")
            has_oom_annotation = any("node_vmstat_oom_kill" in a.get("expr", "")
                                     for a in annotations)
            for p in data_panels(doc):
                if p.get("type") == "timeseries" and "OOM kills" in p.get("title", ""):
                    custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
                    if custom.get("drawStyle") != "bars":
                        problems.append(f"{name}: panel {p['title']!r}: OOM kills are events; "
                                        f"fix: custom.drawStyle bars")
                    if not has_oom_annotation:
                        problems.append(f"{name}: panel {p['title']!r} has no OOM-kill "
                                        f"annotation on its dashboard; fix: add one on "
                                        f"node_vmstat_oom_kill")
        self.report(problems)

    def test_promql_rules(self):
        """Validates every expression: rate(), irate() and increase() take [$__rate_interval]
        ([$__range] only in instant queries that total the time range); no range is hard-coded;
        a _total counter appears only inside rate() or increase(); every host series is selected
        by job, pool and host, every controller series by job."""
        problems = []
        for path, (_, doc) in self.docs.items():
            for q in queries(path, doc):
                if not q.expr:
                    problems.append(f"{q}: no expression (variables need "
                                    f"label_values(SELECTOR, LABEL))")
                    continue
                for fn, arg, _ in calls(q.expr, RANGE_FUNCTIONS):
                    m = re.fullmatch(r"\s*[A-Za-z_:][\w:]*\s*(\{[^}]*\})?\s*\[([^\]]*)\]\s*", arg)
                    window = m.group(2) if m else None
                    if window == "$__rate_interval":
                        continue
                    totals = (q.instant and q.panel is not None
                              and q.panel.get("type") in INSTANT_PANEL_TYPES)
                    if window == "$__range" and totals:
                        continue
                    problems.append(
                        f"{q}: {fn}({arg.strip()}): fix: {fn}(METRIC{{...}}[$__rate_interval])"
                        + (" ([$__range] only in an instant query of a stat, bar gauge or table)"
                           if window == "$__range" else ""))
                for r in re.findall(r"\[([^\]]*)\]", _blank_strings(q.expr)):
                    if re.sub(r"\$__(rate_interval|interval|range)|:", "", r).strip():
                        problems.append(f"{q}: range [{r}] is hard-coded; fix: use "
                                        f"$__rate_interval, $__interval or $__range")
                blanked = _blank(_blank_strings(q.expr), r"\{[^}]*\}")
                for name, pos in metric_uses(q.expr):
                    if name.endswith("_total") and not re.search(
                            r"\b(rate|irate|increase)\s*\(\s*$", blanked[:pos]):
                        problems.append(f"{q}: {name} outside rate()/increase(); fix: "
                                        f"rate({name}{{...}}[$__rate_interval]) or increase()")
                    matchers = matchers_at(q.expr, pos)
                    for need in self.selection_needed(q, name):
                        if not any(n in matchers for n in need):
                            problems.append(f"{q}: {name}{{{matchers}}} does not select "
                                            f"{need[0]}; fix: add it")
        self.report(problems)

    @staticmethod
    def selection_needed(q, metric):
        """The matchers a selector of `metric` in query `q` needs, each as its accepted forms."""
        job, pool, host = ['job="$job"'], ['pool=~"$pool"'], ['host=~"$host"', 'host="$host"']
        if q.label == "job":
            return []  # the job variable lists the jobs
        if q.label == "pool":
            return [job]
        if q.label == "host":
            return [job, pool]
        if metric.startswith(SCHEDULE_METRIC_PREFIX):
            if q.label == "schedule":
                return [job, host]
            return [job, host, ['schedule=~"$schedule"', 'schedule="$schedule"']]
        per_host = metric.startswith("node_") or metric in PER_HOST_KFLEET_METRICS
        return [job, pool, host] if per_host else [job]

    def test_promql_is_valid_for_promtool(self):
        """Validates that promtool accepts every expression (template variables and $__...
        intervals replaced by values), as recording rules of one group."""
        self.assertTrue(os.access(PROMTOOL, os.X_OK),
                        f"{PROMTOOL} is missing: apt-get install prometheus")
        all_queries = [q for path, (_, doc) in self.docs.items() for q in queries(path, doc)]
        exprs, problems = [], []
        for q in all_queries:
            try:
                exprs.append((q, substitute(q.expr, STATIC_VALUES)))
            except KeyError as e:
                problems.append(f"{q}: unknown variable ${e.args[0]}; fix: use job, pool, host "
                                f"or $__rate_interval, $__interval, $__range")
        self.report(problems)
        self.assertGreater(len(exprs), 50)
        ok, output = run_promtool([e for _, e in exprs])
        if not ok:
            # Name the culprits: check each expression alone.
            for q, expr in exprs:
                one_ok, one_output = run_promtool([expr])
                if not one_ok:
                    problems.append(f"{q}: promtool rejects {expr!r}: {one_output.strip()}")
            self.report(problems or [f"promtool check rules failed: {output}"])
        # A check that cannot fail is no check: promtool must reject a broken expression.
        self.assertFalse(run_promtool(["sum(rate(node_load1[1m])"])[0])

    def test_metric_extraction(self):
        """Validates the metric-name reader the other checks rely on on a known expression."""
        expr = ('histogram_quantile(0.95, sum by (le) (rate(kfleet_dispatch_latency_seconds_bucket'
                '{job="$job",le!="x"}[$__rate_interval]))) / on (host) group_left(pool) '
                'node_load1{host=~"a|b"} * 1e3 - max_over_time(timestamp(node_time_seconds)'
                '[$__range:$__interval]) and ignoring (mode) up offset 5m')
        self.assertEqual(metric_names(expr), {"kfleet_dispatch_latency_seconds_bucket",
                                              "node_load1", "node_time_seconds", "up"})

    def test_metrics_are_exported(self):
        """Validates that every metric a dashboard reads is one kfleet exports."""
        exported, problems = exported_metric_names()
        self.report(problems)
        for path, (_, doc) in self.docs.items():
            for q in queries(path, doc):
                for name in sorted(metric_names(q.expr) - exported):
                    problems.append(f"{q}: {name} is not a metric kfleet exports "
                                    f"(docs/metrics.md); fix: use one that is, or list the "
                                    f"panel as a gap in docs/dashboards.md")
        self.report(problems)

    def test_provisioning(self):
        """Validates deploy/grafana: the datasource's uid is the one the dashboards start on and
        its timeInterval is the scrape interval of deploy/prometheus/prometheus.yml; the dashboard
        provider reads the directory kfleet installs the dashboards in."""
        with open(os.path.join(GRAFANA_DIR, "datasources", "kfleet.yaml"), encoding="utf-8") as f:
            ds = f.read()
        with open(os.path.join(GRAFANA_DIR, "dashboards", "kfleet.yaml"), encoding="utf-8") as f:
            provider = f.read()
        with open(PROMETHEUS_YML, encoding="utf-8") as f:
            prometheus = f.read()
        self.assertEqual(yaml_value(ds, "type"), "prometheus")
        self.assertEqual(yaml_value(ds, "timeInterval"), yaml_value(prometheus, "scrape_interval"),
                         "jsonData.timeInterval must equal prometheus.yml's scrape_interval")
        uid = yaml_value(ds, "uid")
        for path, (_, doc) in self.docs.items():
            current = variable(doc, "datasource").get("current", {}).get("value")
            self.assertEqual(current, uid, f"{os.path.basename(path)}: the datasource variable "
                                           f"should start on the provisioned uid {uid}")
        self.assertEqual(yaml_value(provider, "type"), "file")
        self.assertEqual(yaml_value(provider, "path"), "/usr/share/kfleet/dashboards")
        # ... which is where cmake installs dashboards/ for the prefix /usr.
        self.assertRegex(read("cmake/install.cmake"),
                         r"install\(DIRECTORY dashboards DESTINATION share/kfleet")


# --- integration ---------------------------------------------------------------------------------

# Allocates 64 MiB under a 32 MiB limit: the kernel's OOM killer kills it.
HOG = "b = bytearray(64 << 20); import time; time.sleep(1)"
# Schedules on dash-hog: one OOM-killed at every run, one that passes with some memory in use.
OOM_SCHEDULE, OOM_SCHEDULE_EVERY = "dash-small", "2s"
OK_SCHEDULE, OK_SCHEDULE_EVERY = "dash-fetch", "5s"
FETCH = "b = bytearray(8 << 20); import time; time.sleep(0.5)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An exec suite of three tests, one per status: exit 0 passes, 4 skips, anything else fails.
TESTS = 'case "$1" in t_pass) exit 0 ;; t_skip) exit 4 ;; *) exit 1 ;; esac'
SCRAPE_INTERVAL_S = 1
STEP_S = 2
# Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval).
RATE_INTERVAL_S = max(STEP_S + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)
WINDOW_S = 40


def finite_values(result):
    """Every finite value of a Prometheus query result (matrix or vector)."""
    out = []
    for series in result:
        points = series.get("values") or [series.get("value")]
        for _, v in filter(None, points):
            if math.isfinite(float(v)):
                out.append(float(v))
    return out


def exposition_names(text):
    return {m.group(1) for m in re.finditer(r"^([A-Za-z_:][\w:]*)[{ ]", text, re.M)}


class IntegrationTest(harness.KfleetTestCase):
    """Every query of every dashboard against a real Prometheus scraping a real controller."""

    def start_prometheus(self):
        port = harness.free_port()
        data = os.path.join(self.tmp, "prometheus")
        os.makedirs(data)
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"""global:
  scrape_interval: {SCRAPE_INTERVAL_S}s
scrape_configs:
  - job_name: kfleet
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{self.metrics_port}"]
""")
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        f"{PROMETHEUS} is missing: apt-get install prometheus")
        self._start("prometheus", [PROMETHEUS, f"--config.file={config}",
                                   f"--storage.tsdb.path={data}",
                                   f"--web.listen-address=127.0.0.1:{port}"])
        self.prometheus = f"http://127.0.0.1:{port}"

        def ready():
            try:
                with urllib.request.urlopen(self.prometheus + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        harness.wait_for(ready, 30, "Prometheus to be ready")

    def api(self, path, **params):
        url = f"{self.prometheus}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{url}: {e.code} {e.read().decode(errors='replace')}") from None
        self.assertEqual(body.get("status"), "success", body)
        return body["data"]

    def value(self, query):
        result = self.api("query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None

    def render_dashboards(self, values, start, end):
        """Draws every dashboard with dashboards/render.py into $KFLEET_BUILD_DIR/dashboards and
        checks that each is a PNG of a dashboard's size with more than a blank page in it."""
        out_dir = os.path.join(harness.BUILD_DIR, "dashboards")
        os.makedirs(out_dir, exist_ok=True)
        for path in dashboard_files():
            multi = variable(load(path), "host").get("multi")
            png = os.path.join(out_dir, os.path.basename(path)[:-len(".json")] + ".png")
            if os.path.exists(png):
                os.unlink(png)
            argv = [RENDER_PYTHON, RENDER, "--prometheus", self.prometheus, "--dashboard", path,
                    "--out", png, "--start", str(start), "--end", str(end), "--step",
                    str(STEP_S), "--scrape-interval", f"{SCRAPE_INTERVAL_S}s"]
            for name in ("job", "pool", "schedule", "interval"):
                argv += ["--var", f"{name}={values[name]}"]
            argv += ["--var", "host=" + ("(dash-hog|dash-idle)" if multi else "dash-hog")]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, f"{' '.join(argv)}:\n{p.stderr}"
                             + ("\nfix: apt-get install python3-matplotlib"
                                if "matplotlib" in p.stderr else ""))
            drawn = json.loads(p.stdout.strip().splitlines()[-1])
            name = os.path.basename(path)
            self.assertEqual(drawn["panels"], len(data_panels(load(path))), drawn)
            self.assertEqual(sorted(drawn["no_data"]),
                             sorted(title for file, title in EXPECTED_EMPTY if file == name),
                             f"{name}: panels drawn without data")
            with open(png, "rb") as f:
                data = f.read()
            self.assertEqual(data[:8], PNG_SIGNATURE, png)
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            self.assertGreaterEqual(width, 1000, png)
            self.assertGreaterEqual(height, 500, png)
            self.assertGreater(len(data), 30000, f"{png}: {len(data)} bytes, nearly blank")
            print(f"  {png}: {width}x{height}, {len(data) // 1024} KiB", flush=True)

    def test_every_panel_has_data(self):
        """Validates that with two hosts, one of which OOM-kills a command while the other runs one
        with output and a test step, every query of every dashboard returns data from a real
        Prometheus (bar the panels in EXPECTED_EMPTY, which must be empty), that the OOM kill, the
        test results and the hosts' kernel show where a kernel developer looks for them, and that
        every metric the dashboards read is in /metrics."""
        self.start_controller(extra_args=["--metrics-interval", "1s"])
        self.start_agent("dash-hog", labels={"pool": "dash"})
        self.start_agent("dash-idle", labels={"pool": "dash"})
        self.start_prometheus()
        start = time.time()
        small = self.kctl("schedule", "add", OOM_SCHEDULE, "--host", "dash-hog", "--every-after",
                          OOM_SCHEDULE_EVERY, "--memory-max", "32M", "--", "python3", "-c", HOG)
        self.assertEqual(small.rc, 0, small)
        fetch = self.kctl("schedule", "add", OK_SCHEDULE, "--host", "dash-hog", "--every-after",
                          OK_SCHEDULE_EVERY, "--memory-max", "64M", "--", "python3", "-c", FETCH)
        self.assertEqual(fetch.rc, 0, fetch)
        oom_query = 'node_vmstat_oom_kill{job="kfleet",host="dash-hog"}'
        before = harness.wait_for(lambda: self.value(oom_query) is not None and
                                  (self.value(oom_query),), 30, "Prometheus to have dash-hog")[0]
        time.sleep(RATE_INTERVAL_S + 1)  # samples before the kill, for rate() and increase()

        killed_at = time.time()
        hog = self.kctl("exec", "--host", "dash-hog", "--memory-max", "32M", "--name", "dash-oom",
                        "--", "python3", "-c", HOG, timeout=120)
        self.assertNotEqual(hog.rc, 0, hog)
        self.assertIn("OOM-killed", hog.stderr, hog)

        # A command with output on the other host: log bytes stored, a second dispatch.
        chatty = self.kctl("exec", "--host", "dash-idle", "--name", "dash-output", "--",
                           "seq", "1", "20000", timeout=120)
        self.assertEqual(chatty.rc, 0, chatty)

        # A test step on the same host: one result of each of pass, fail and skip stored.
        spec = os.path.join(self.tmp, "dash-tests.json")
        with open(spec, "w", encoding="utf-8") as f:
            json.dump({"name": "dash-tests", "hosts": {"names": ["dash-idle"]},
                       "steps": [{"test": {"suite": "exec", "section": "dash", "reruns": 0,
                                           "tests": ["t_pass", "t_fail", "t_skip"],
                                           "argv": ["sh", "-c", TESTS, "sh", "{test}"]}}]}, f)
        tests = self.kctl("run", "-f", spec, timeout=120)
        self.assertEqual(tests.rc, 1, tests)  # t_fail failed: so did the job

        harness.wait_for(lambda: (self.value(oom_query) or 0) > before, 30,
                         "Prometheus to see dash-hog's OOM kill")
        harness.wait_for(lambda: (self.value('kfleet_log_bytes_stored_total{job="kfleet"}')
                                  or 0) > 100000, 30, "Prometheus to see the output stored")
        harness.wait_for(lambda: (self.value('kfleet_results_stored_total{job="kfleet"}')
                                  or 0) >= 3, 30, "Prometheus to see the test results stored")
        # Let the rate() windows move past the events, and the window reach WINDOW_S.
        time.sleep(max(RATE_INTERVAL_S + 2, start + WINDOW_S - time.time()))
        end = time.time()
        print(f"\n  window {end - start:.0f}s, OOM kill at +{killed_at - start:.0f}s", flush=True)

        values = {"job": "kfleet", "pool": "dash", "__interval": f"{STEP_S}s",
                  "schedule": ".*", "interval": OK_SCHEDULE_EVERY.rstrip("s"),
                  "__rate_interval": f"{RATE_INTERVAL_S}s", "__range": f"{int(end - start)}s"}
        problems, results = [], {}
        for path in dashboard_files():
            doc = load(path)
            name = os.path.basename(path)
            multi = variable(doc, "host").get("multi")
            values["host"] = "(dash-hog|dash-idle)" if multi else "dash-hog"
            for q in queries(path, doc):
                expr = substitute(q.expr, values)
                if q.label:
                    got = self.api(f"label/{q.label}/values", **{"match[]": expr},
                                   start=start, end=end)
                    results[(name, q.where)] = got
                    if not got:
                        problems.append(f"{q}: no values for {expr}")
                    continue
                if q.instant:
                    result = self.api("query", query=expr, time=end)["result"]
                else:
                    result = self.api("query_range", query=expr, start=start, end=end,
                                      step=STEP_S)["result"]
                results[(name, q.where)] = result
                expected_empty = EXPECTED_EMPTY.get((name, q.panel and q.panel.get("title")))
                if expected_empty and result:
                    problems.append(f"{q}: has data now; fix: take it off EXPECTED_EMPTY "
                                    f"({expected_empty})")
                elif not expected_empty and not finite_values(result):
                    problems.append(f"{q}: no data for {expr}")
        self.assertEqual(problems, [], "\n".join(problems))

        # What a kernel developer would look at after an OOM kill.
        def by_host(file, where):
            return {s["metric"].get("host"): max(finite_values([s]), default=0)
                    for s in results[(file, where)]}

        self.assertGreater(by_host("kfleet-fleet.json",
                                   "panel 'OOM kills by host' query A").get("dash-hog", 0), 0)
        self.assertGreater(by_host("kfleet-fleet.json", "panel 'Hosts' query G")["dash-hog"], 0)
        last_oom_ms = by_host("kfleet-fleet.json", "panel 'Hosts' query H")["dash-hog"]
        self.assertGreaterEqual(last_oom_ms, killed_at * 1000 - 5000)
        self.assertLessEqual(last_oom_ms, end * 1000 + 1000)
        self.assertIn("dash-hog", by_host("kfleet-fleet.json", "annotation 'OOM kills'"))
        self.assertGreater(finite_values(
            results[("kfleet-fleet.json", "panel 'OOM kills, last 24 h' query A")])[0], 0)
        kinds = {s["metric"]["kind"]: float(s["value"][1]) for s in
                 results[("kfleet-fleet.json", "panel 'Kernel events by kind, all hosts' query A")]}
        self.assertGreater(kinds.get("oom", 0), 0, kinds)
        self.assertGreater(by_host("kfleet-host.json",
                                   "panel 'OOM kills in time range' query A").get(None, 0), 0)
        self.assertGreater(max(finite_values(
            results[("kfleet-fleet.json", "panel 'Log bytes stored' query A")])), 0)
        host_kinds = {s["metric"]["kind"]: float(s["value"][1]) for s in results[(
            "kfleet-host.json", "panel 'Kernel events by kind in time range' query A")]}
        self.assertGreater(host_kinds.get("oom", 0), 0, host_kinds)
        self.assertEqual(host_kinds.get("panic"), 0, host_kinds)  # every kind, 0 included

        # The test step's results, by suite and status, counted once each.
        tested = {(s["metric"]["suite"], s["metric"]["status"]): float(s["value"][1]) for s in
                  results[("kfleet-jobs.json",
                           "panel 'Tests passed, failed, skipped per suite' query A")]}
        self.assertEqual({k: round(v) for k, v in tested.items()},
                         {("exec", "pass"): 1, ("exec", "fail"): 1, ("exec", "skip"): 1})

        # The kernel column: the release both agents' machine runs.
        kernels = {s["metric"]["host"]: s["metric"].get("release")
                   for s in results[("kfleet-fleet.json", "panel 'Hosts' query I")]}
        self.assertEqual(kernels, {"dash-hog": os.uname().release,
                                   "dash-idle": os.uname().release})
        self.assertTrue(finite_values(
            results[("kfleet-jobs.json", "panel 'Dispatch latency' query B")]))
        self.assertEqual(set(results[("kfleet-fleet.json", "variable 'host'")]),
                         {"dash-hog", "dash-idle"})
        self.assertEqual(results[("kfleet-fleet.json", "variable 'pool'")], ["dash"])
        self.assertEqual(results[("kfleet-fleet.json", "variable 'job'")], ["kfleet"])

        # The mail-host dashboard: the OOM-killed schedule and the healthy one told apart.
        def by_schedule(where):
            return {s["metric"].get("schedule"): max(finite_values([s]), default=0)
                    for s in results[("kfleet-mailhost.json", where)]}

        self.assertEqual(set(results[("kfleet-mailhost.json", "variable 'schedule'")]),
                         {OOM_SCHEDULE, OK_SCHEDULE})
        ooms = by_schedule("panel 'OOM kills by schedule' query A")
        self.assertGreater(ooms[OOM_SCHEDULE], 0, ooms)
        self.assertEqual(ooms[OK_SCHEDULE], 0, ooms)
        last = {s["metric"]["schedule"]: s["metric"]["result"]
                for s in results[("kfleet-mailhost.json", "panel 'Last result' query A")]}
        self.assertEqual(last, {OOM_SCHEDULE: "oom", OK_SCHEDULE: "pass"})
        counted = {(s["metric"]["schedule"], s["metric"]["result"]) for s in
                   results[("kfleet-mailhost.json", "panel 'Runs in time range' query A")]}
        self.assertEqual(counted, {(OOM_SCHEDULE, "oom"), (OK_SCHEDULE, "pass")})
        peaks = by_schedule("panel 'Peak memory of the last run' query A")
        self.assertGreaterEqual(peaks[OOM_SCHEDULE], 30 << 20, peaks)  # at its 32 MiB limit
        self.assertLess(peaks[OK_SCHEDULE], 32 << 20, peaks)
        behind = by_schedule("panel 'Last run, intervals ago' query A")
        self.assertLess(behind[OK_SCHEDULE], 2, behind)  # on time: not red
        self.assertIn(OOM_SCHEDULE, {s["metric"].get("schedule") for s in results[
            ("kfleet-mailhost.json", "annotation 'Schedule OOM kills'")]})

        self.render_dashboards(values, start, end)

        # Every metric the dashboards read is in the controller's /metrics, but those of the
        # expected-empty panels, which have no series yet.
        exposed = exposition_names(self.metrics_text())
        missing = []
        for path in dashboard_files():
            name = os.path.basename(path)
            for q in queries(path, load(path)):
                absent = metric_names(q.expr) - exposed
                empty_ok = (name, q.panel and q.panel.get("title")) in EXPECTED_EMPTY
                if absent and not empty_ok:
                    missing.append(f"{q}: {sorted(absent)} not in /metrics")
        self.assertEqual(missing, [], "\n".join(missing))


if __name__ == "__main__":
    unittest.main()
