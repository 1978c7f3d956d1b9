#!/usr/bin/env python3
"""Writes kfleet's Grafana dashboards (classic dashboard JSON) into this directory.

  python3 dashboards/generate.py            # (re)write kfleet-*.json here
  python3 dashboards/generate.py --out DIR  # write them into DIR instead
  python3 dashboards/generate.py --check    # exit 1 if the committed files are out of date

The JSON files are committed; tests/test_dashboards.py checks that they equal this script's output
and that every panel follows the rules in docs/dashboards.md. Edit this script, never the JSON.

Every query reads what the controller's /metrics exports (docs/metrics.md): host samples under
node_exporter's names with `host`, `instance` and the host's labels (`pool`, ...), and the
controller's own kfleet_* metrics.
"""
import argparse
import json
import os
import sys

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
# The uid of the datasource deploy/grafana/provisioning/datasources/kfleet.yaml provisions: the
# datasource variable starts on it, or on Grafana's default Prometheus datasource without it.
PROVISIONED_DS_UID = "kfleet-prometheus"

# Selectors. Host series carry `host` and the host's labels; the controller's own metrics only the
# Prometheus job (and the controller's address as `instance`).
CONTROLLER = 'job="$job"'
FLEET_HOSTS = 'job="$job",pool=~"$pool",host=~"$host"'
ONE_HOST = 'job="$job",pool=~"$pool",host="$host"'

# Extra matchers, as constants: before Python 3.12 an f-string expression cannot hold a backslash.
IDLE = 'mode="idle"'
BUSY = 'mode!="idle"'
WAITING_OR_RUNNING = 'state=~"pending|accepted|running"'
JOB_RUNNING = 'state="running"'

GRID_WIDTH = 24


def sel(metric, selector, extra=""):
    """metric{selector,extra}."""
    return f"{metric}{{{selector}{',' + extra if extra else ''}}}"


def target(expr, legend="", instant=False, table=False):
    """A Prometheus query of a panel. Instant queries are evaluated at the end of the time range
    (stat, bar gauge and table panels); range queries draw time series."""
    t = {"datasource": DS, "editorMode": "code", "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def thresholds(*steps):
    """Threshold steps as (value, color) pairs; the first value is the base (None)."""
    return {"mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in steps]}


GREEN = ((None, "green"),)
OOM_STEPS = ((None, "green"), (1, "red"))


def panel(kind, title, description, unit, targets, w, h, defaults=None, options=None, **extra):
    """A panel of `kind` with its targets and unit; gridPos is filled in by layout()."""
    d = {"unit": unit}
    d.update(defaults or {})
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "fieldConfig": {"defaults": d, "overrides": extra.pop("overrides", [])},
         "options": options or {}, "targets": targets, "gridPos": {"w": w, "h": h}}
    p.update(extra)
    return p


def timeseries(title, description, unit, targets, w=12, h=8, stack=False, bars=False, min0=True,
               max_value=None):
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1,
              "fillOpacity": 60 if bars else (25 if stack else 10), "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none",
                                               "group": "A"}}
    defaults = {"custom": custom, "color": {"mode": "palette-classic"}}
    if min0:
        defaults["min"] = 0
    if max_value is not None:
        defaults["max"] = max_value
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                          "calcs": []},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, description, unit, targets, w, h, defaults, options)


def reduce_last():
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(title, description, unit, targets, w=4, h=4, steps=GREEN, mappings=None,
         time_from=None, decimals=None):
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps),
                "mappings": mappings or []}
    if decimals is not None:
        defaults["decimals"] = decimals
    options = {"reduceOptions": reduce_last(), "colorMode": "value", "graphMode": "none",
               "justifyMode": "auto", "orientation": "auto", "textMode": "auto"}
    extra = {"timeFrom": time_from} if time_from else {}
    return panel("stat", title, description, unit, targets, w, h, defaults, options, **extra)


def bargauge(title, description, unit, targets, w=12, h=8, steps=GREEN, max_value=None,
             decimals=None):
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps), "min": 0}
    if decimals is not None:
        defaults["decimals"] = decimals
    if max_value is not None:
        defaults["max"] = max_value
    options = {"reduceOptions": reduce_last(), "displayMode": "gradient",
               "orientation": "horizontal", "showUnfilled": True}
    return panel("bargauge", title, description, unit, targets, w, h, defaults, options)


def table(title, description, unit, columns, w=24, h=9, first_overrides=(), label_columns=()):
    """A table with one row per host: `columns` are (title, unit, expr, extra properties), each an
    instant query returning one series per host, merged on the host label. `label_columns` are
    (title, label, expr): an instant query per host whose `label` is shown, right after the host
    (its value, an info metric's 1, is hidden); their queries come after the columns'."""
    targets, overrides = [], list(first_overrides)
    for i, (name, col_unit, expr, props) in enumerate(columns):
        ref = chr(ord("A") + i)
        t = target(expr, instant=True, table=True)
        t["refId"] = ref
        targets.append(t)
        overrides.append({"matcher": {"id": "byName", "options": f"Value #{ref}"},
                          "properties": [{"id": "displayName", "value": name},
                                         {"id": "unit", "value": col_unit}] + list(props)})
    excluded, renamed, order = {"Time": True}, {}, {"host": 0}
    for i, (name, label, expr) in enumerate(label_columns, start=len(columns)):
        ref = chr(ord("A") + i)
        t = target(expr, instant=True, table=True)
        t["refId"] = ref
        targets.append(t)
        excluded[f"Value #{ref}"] = True
        renamed[label] = name
        order[label] = len(order)
    options = {"showHeader": True, "cellHeight": "sm",
               "footer": {"show": False, "reducer": ["sum"], "fields": ""},
               "sortBy": [{"displayName": "host", "desc": False}]}
    p = panel("table", title, description, unit, targets, w, h,
              {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}}, options,
              overrides=overrides)
    organize = {"excludeByName": excluded, "indexByName": order}
    if renamed:
        organize["renameByName"] = renamed
    p["transformations"] = [{"id": "merge", "options": {}}, {"id": "organize", "options": organize}]
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"w": GRID_WIDTH, "h": 1}}


def layout(panels):
    """Gives each panel an id and an x/y: left to right, wrapping at the grid's width; a row starts
    a new line."""
    x = y = line_height = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        line_height = max(line_height, h)
        if p["type"] == "row":
            x, y, line_height = 0, y + h, 0
        for t_index, t in enumerate(p.get("targets", [])):
            t.setdefault("refId", chr(ord("A") + t_index))
    return panels


# --- template variables ----------------------------------------------------------------------

def datasource_variable():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {"text": "kfleet", "value": PROVISIONED_DS_UID},
            "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "regex": "", "skipUrlSync": False}


def query_variable(name, label, query, description, multi=False, include_all=False):
    v = {"name": name, "label": label, "type": "query", "datasource": DS,
         "definition": query, "query": {"query": query, "refId": f"kfleet-{name}"},
         "description": description, "current": {}, "hide": 0, "includeAll": include_all,
         "multi": multi, "options": [], "refresh": 2, "regex": "", "skipUrlSync": False,
         "sort": 1}
    if include_all:
        # Hosts without the label (no pool) match ".*" too; Grafana's default All value would
        # list every value instead and leave them out.
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


def variables(multi_host):
    job = query_variable(
        "job", "Prometheus job", "label_values(kfleet_agents_connected, job)",
        "The Prometheus job that scrapes the kfleet controller (job_name in prometheus.yml).")
    pool = query_variable(
        "pool", "Pool", 'label_values(kfleet_host_up{job="$job"}, pool)',
        "Hosts by their pool label; All includes hosts without one.", multi=True,
        include_all=True)
    host = query_variable(
        "host", "Host", 'label_values(kfleet_host_up{job="$job",pool=~"$pool"}, host)',
        "Host name, as in kctl hosts.", multi=multi_host, include_all=multi_host)
    return [datasource_variable(), job, pool, host]


def oom_annotation(selector):
    return {"name": "OOM kills", "datasource": DS, "enable": True, "hide": False,
            "iconColor": "red",
            "expr": f"sum by (host) (increase({sel('node_vmstat_oom_kill', selector)}"
                    f"[$__rate_interval])) > 0",
            "titleFormat": "OOM kill on {{host}}",
            "textFormat": "kctl events --host {{host}} --kind oom",
            "tagKeys": "host", "useValueForTime": False}


def dashboard(uid, title, description, panels, multi_host, annotations, time_from="now-6h",
              extra_variables=()):
    return {
        "annotations": {"list": annotations},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"type": "dashboards", "tags": ["kfleet"], "asDropdown": False,
                   "includeVars": True, "keepTime": True, "title": "kfleet", "icon":
                   "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "liveNow": False,
        "panels": layout(panels),
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["kfleet"],
        "templating": {"list": variables(multi_host) + list(extra_variables)},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --- Fleet overview ----------------------------------------------------------------------------

def fleet():
    S, C = FLEET_HOSTS, CONTROLLER
    cpus_by_host = (f"count by (host) (rate({sel('node_cpu_seconds_total', S, IDLE)}"
                    f"[$__rate_interval]))")
    host_link = [{"id": "links", "value": [{
        "title": "Host detail",
        "url": "/d/kfleet-host/kfleet-host-detail?var-job=${job}&var-host=${__value.raw}"
               "&${__url_time_range}"}]}]
    panels = [
        row("Fleet"),
        stat("Hosts online / known",
             "Hosts whose kfleet agent is connected, and every host the controller knows "
             "(offline, rebooting and draining ones included). kctl hosts lists them.",
             "none",
             [target(f"sum({sel('kfleet_host_up', S)})", "online", instant=True),
              target(f"count({sel('kfleet_host_up', S)})", "known", instant=True)],
             w=5, h=8),
        stat("OOM kills, last 24 h",
             "Processes the kernel's OOM killer killed on the selected hosts in the last 24 "
             "hours, global and memory cgroup OOMs alike (/proc/vmstat oom_kill). kctl events "
             "--kind oom names each victim and the kfleet command it belonged to.",
             "none",
             [target(f"sum(increase({sel('node_vmstat_oom_kill', S)}[$__range]))", "OOM kills",
                     instant=True)],
             w=5, h=8, steps=OOM_STEPS, time_from="24h", decimals=0),
        bargauge("Kernel events by kind, all hosts",
                 "Kernel reports the agents found in the kernel logs of all hosts in the time "
                 "range (the pool and host selections do not apply): oom, oops, bug, panic, warn "
                 "(WARNING), hung_task, soft_lockup, kasan, and agent_killed when an agent died "
                 "and came back. kctl events --kind KIND shows each report with its trace.",
                 "none",
                 [target(f"sum by (kind) (increase({sel('kfleet_events_total', C)}"
                         f"[$__range]))", "{{kind}}", instant=True)],
                 w=14, h=8, steps=((None, "green"), (1, "orange")), decimals=0),
        row("Hosts"),
        table("Hosts",
              "One row per host at the end of the time range. Memory pressure is the share of "
              "time some task waited for memory (PSI memory some); load per CPU is the 1-minute "
              "load average divided by the host's CPUs; OOM kills and the last one are over the "
              "time range. Kernel is the release the host runs (uname -r, node_uname_info). The "
              "host's running command is in kctl top.",
              "short",
              [("Agent", "none", f"max by (host) ({sel('kfleet_host_up', S)})",
                [{"id": "mappings", "value": [{"type": "value", "options": {
                    "0": {"text": "offline", "color": "red"},
                    "1": {"text": "online", "color": "green"}}}]},
                 {"id": "custom.cellOptions", "value": {"type": "color-text"}}]),
               ("Uptime", "s",
                f"max by (host) ({sel('node_time_seconds', S)} - "
                f"{sel('node_boot_time_seconds', S)})", []),
               ("Memory available", "bytes",
                f"max by (host) ({sel('node_memory_MemAvailable_bytes', S)})", []),
               ("Available of total", "percentunit",
                f"max by (host) ({sel('node_memory_MemAvailable_bytes', S)} / "
                f"{sel('node_memory_MemTotal_bytes', S)})", []),
               ("Memory pressure", "percentunit",
                f"max by (host) (rate({sel('node_pressure_memory_waiting_seconds_total', S)}"
                f"[$__rate_interval]))", []),
               ("Load per CPU", "short",
                f"max by (host) ({sel('node_load1', S)}) / {cpus_by_host}", []),
               ("OOM kills", "none",
                f"sum by (host) (increase({sel('node_vmstat_oom_kill', S)}[$__range]))",
                [{"id": "decimals", "value": 0}]),
               ("Last OOM kill", "dateTimeFromNow",
                f"max by (host) (max_over_time(timestamp(increase("
                f"{sel('node_vmstat_oom_kill', S)}[$__rate_interval]) > 0)"
                f"[$__range:$__interval])) * 1000", [])],
              first_overrides=[{"matcher": {"id": "byName", "options": "host"},
                                "properties": host_link}],
              label_columns=[("Kernel", "release",
                              f"max by (host, release) ({sel('node_uname_info', S)})")]),
        row("OOM kills and memory"),
        timeseries("OOM kills by host",
                   "Processes the kernel's OOM killer killed, per host (/proc/vmstat oom_kill, "
                   "global and memory cgroup OOMs). The red marks are the same kills; kctl "
                   "events --host HOST --kind oom names the victims and their commands.",
                   "none",
                   [target(f"sum by (host) (increase({sel('node_vmstat_oom_kill', S)}"
                           f"[$__rate_interval]))", "{{host}}")],
                   bars=True),
        timeseries("Memory pressure by host",
                   "Share of time at least one task on the host waited for memory (PSI memory "
                   "some, /proc/pressure/memory): reclaim, swap-in and refaults stalling tasks.",
                   "percentunit",
                   [target(f"max by (host) (rate("
                           f"{sel('node_pressure_memory_waiting_seconds_total', S)}"
                           f"[$__rate_interval]))", "{{host}}")]),
        timeseries("Memory available by host",
                   "MemAvailable from /proc/meminfo: the kernel's estimate of memory that can "
                   "be given to new work without swapping.",
                   "bytes",
                   [target(f"max by (host) ({sel('node_memory_MemAvailable_bytes', S)})",
                           "{{host}}")]),
        timeseries("Load per CPU by host",
                   "1-minute load average (runnable plus uninterruptible tasks) divided by the "
                   "host's CPUs: above 1, tasks queue for CPU or wait in D state.",
                   "short",
                   [target(f"max by (host) ({sel('node_load1', S)}) / {cpus_by_host}",
                           "{{host}}")]),
        row("Controller"),
        stat("Agents connected",
             "Agents with an open session to the controller.", "none",
             [target(f"sum({sel('kfleet_agents_connected', C)})", "agents", instant=True)],
             w=4, h=8),
        timeseries("Hosts by state",
                   "Hosts the controller knows, by state (online, offline, rebooting, "
                   "draining).", "none",
                   [target(f"sum by (state) ({sel('kfleet_hosts', C)})", "{{state}}")], w=10),
        timeseries("Commands by state",
                   "Commands in the controller's store, by state: pending (waiting for a host), "
                   "accepted, running, finished, skipped.", "none",
                   [target(f"sum by (state) ({sel('kfleet_commands', C)})", "{{state}}")], w=10),
        timeseries("Dispatch latency",
                   "Time from a command's creation to its sending to an agent, waiting for a "
                   "free host included: median and 95th percentile of the commands sent in each "
                   "interval.", "s",
                   [target("histogram_quantile(0.5, sum by (le) (rate("
                           f"{sel('kfleet_dispatch_latency_seconds_bucket', C)}"
                           "[$__rate_interval])))", "p50"),
                    target("histogram_quantile(0.95, sum by (le) (rate("
                           f"{sel('kfleet_dispatch_latency_seconds_bucket', C)}"
                           "[$__rate_interval])))", "p95")], w=8),
        timeseries("Log bytes stored",
                   "Bytes of command output (stdout, stderr, kmsg streams) the controller made "
                   "durable, per second.", "Bps",
                   [target(f"sum(rate({sel('kfleet_log_bytes_stored_total', C)}"
                           f"[$__rate_interval]))", "log bytes")], w=8),
        timeseries("Outbox replays",
                   "Items (log chunks, results, events) an agent sent again after a reconnect "
                   "that the controller had already stored, per second. Bursts follow "
                   "reconnects; a steady rate means acknowledgements are being lost.", "cps",
                   [target(f"sum(rate({sel('kfleet_outbox_replays_total', C)}"
                           f"[$__rate_interval]))", "replays")], w=8),
        timeseries("Host samples dropped",
                   "Host samples the controller refused, per second, by reason (unknown_name, "
                   "invalid_label, too_many_samples, ...): non-zero means an agent sends "
                   "something this controller does not export.", "cps",
                   [target(f"sum by (reason) (rate("
                           f"{sel('kfleet_metric_samples_dropped_total', C)}"
                           f"[$__rate_interval]))", "{{reason}}")], w=24),
    ]
    return dashboard("kfleet-fleet", "kfleet / Fleet overview",
                     "Every kfleet host at a glance: which are up, OOM kills and kernel "
                     "reports, memory and load per host, and the controller's own health.",
                     panels, True, [oom_annotation(S)])


# --- Host detail -------------------------------------------------------------------------------

def host():
    H = ONE_HOST
    cpus = f"scalar(count(rate({sel('node_cpu_seconds_total', H, IDLE)}" \
           f"[$__rate_interval])))"

    def rate(metric, extra=""):
        return f"rate({sel(metric, H, extra)}[$__rate_interval])"

    def mem(field):
        return sel(f"node_memory_{field}_bytes", H)

    panels = [
        row("Summary"),
        stat("Agent", "Whether the host's kfleet agent is connected to the controller.", "none",
             [target(f"max({sel('kfleet_host_up', H)})", "agent", instant=True)],
             steps=((None, "red"), (1, "green")),
             mappings=[{"type": "value", "options": {"0": {"text": "offline"},
                                                     "1": {"text": "online"}}}]),
        stat("Uptime", "Time since the host's kernel booted.", "s",
             [target(f"max({sel('node_time_seconds', H)} - {sel('node_boot_time_seconds', H)})",
                     "uptime", instant=True)]),
        stat("Boots in time range",
             "Distinct boots (boot ids) of the host seen in the time range: more than 1 means "
             "it rebooted (kctl events --host HOST --kind boot).", "none",
             [target(f"count(count by (boot_id) (count_over_time("
                     f"{sel('kfleet_host_boot_info', H)}[$__range])))", "boots", instant=True)],
             steps=((None, "green"), (2, "orange"))),
        stat("CPUs", "Online CPUs of the host.", "none",
             [target(f"count({rate('node_cpu_seconds_total', IDLE)})", "CPUs",
                     instant=True)]),
        stat("Memory", "MemTotal from /proc/meminfo.", "bytes",
             [target(f"max({mem('MemTotal')})", "MemTotal", instant=True)]),
        stat("OOM kills in time range",
             "Processes the kernel's OOM killer killed on the host in the time range (global "
             "and memory cgroup OOMs). kctl events --host HOST --kind oom names them.", "none",
             [target(f"sum(increase({sel('node_vmstat_oom_kill', H)}[$__range]))", "OOM kills",
                     instant=True)], steps=OOM_STEPS, decimals=0),
        bargauge("Kernel events by kind in time range",
                 "Kernel reports the host's agent found in its kernel log in the time range: oom, "
                 "oops, bug, panic, warn (WARNING), hung_task, soft_lockup, kasan, and "
                 "agent_killed when the agent died and came back. kctl events --host HOST --kind "
                 "KIND shows each with its trace. Where two agents read one kernel log, a report "
                 "first stored on one and moved to the other, whose command it hit, counts on "
                 "both.", "none",
                 [target(f"sum by (kind) (increase({sel('kfleet_kernel_events_total', H)}"
                         f"[$__range]))", "{{kind}}", instant=True)],
                 w=24, h=6, steps=((None, "green"), (1, "orange")), decimals=0),
        row("CPU"),
        timeseries("CPU time by mode",
                   "Share of the host's CPU time in each mode (user, system, iowait, irq, "
                   "softirq, steal, nice), idle left out; 100% is every CPU busy.",
                   "percentunit",
                   [target(f"sum by (mode) ({rate('node_cpu_seconds_total', BUSY)})"
                           f" / {cpus}", "{{mode}}")], stack=True, max_value=1),
        timeseries("Load per CPU",
                   "Load averages (runnable plus uninterruptible tasks) divided by the CPUs: "
                   "above 1, tasks queue for CPU or wait in D state.", "short",
                   [target(f"{sel('node_load1', H)} / {cpus}", "1 min"),
                    target(f"{sel('node_load5', H)} / {cpus}", "5 min"),
                    target(f"{sel('node_load15', H)} / {cpus}", "15 min")]),
        timeseries("CPU pressure",
                   "Share of time at least one runnable task waited for a CPU (PSI cpu some, "
                   "/proc/pressure/cpu).", "percentunit",
                   [target(rate("node_pressure_cpu_waiting_seconds_total"), "some")]),
        timeseries("Runnable and blocked tasks",
                   "Tasks running or runnable, and tasks blocked in uninterruptible sleep "
                   "waiting for I/O (/proc/stat procs_running, procs_blocked).", "short",
                   [target(sel("node_procs_running", H), "runnable"),
                    target(sel("node_procs_blocked", H), "blocked on I/O")]),
        row("Memory"),
        timeseries("Memory",
                   "/proc/meminfo: total, available (MemAvailable), free, anonymous memory "
                   "(AnonPages), page cache (Cached, shmem included), shmem, buffers, and slab "
                   "split into reclaimable and unreclaimable.", "bytes",
                   [target(mem("MemTotal"), "total"),
                    target(mem("MemAvailable"), "available"),
                    target(mem("MemFree"), "free"),
                    target(mem("AnonPages"), "anonymous"),
                    target(mem("Cached"), "page cache"),
                    target(mem("Shmem"), "shmem"),
                    target(mem("Buffers"), "buffers"),
                    target(f"{mem('Slab')} - {mem('SUnreclaim')}", "slab reclaimable"),
                    target(mem("SUnreclaim"), "slab unreclaimable")]),
        timeseries("Memory pressure",
                   "PSI memory: share of time at least one task waited for memory (some) and "
                   "time every non-idle task did (full), /proc/pressure/memory.", "percentunit",
                   [target(rate("node_pressure_memory_waiting_seconds_total"), "some"),
                    target(rate("node_pressure_memory_stalled_seconds_total"), "full")]),
        timeseries("OOM kills",
                   "Processes the kernel's OOM killer killed (/proc/vmstat oom_kill), global "
                   "and memory cgroup OOMs; the red marks are the same kills. kctl events "
                   "--host HOST --kind oom names the victims and their commands.", "none",
                   [target(f"increase({sel('node_vmstat_oom_kill', H)}[$__rate_interval])",
                           "OOM kills")], bars=True),
        timeseries("Dirty and writeback",
                   "Page cache waiting to be written back (Dirty) and being written (Writeback).",
                   "bytes",
                   [target(mem("Dirty"), "dirty"), target(mem("Writeback"), "writeback")]),
        timeseries("Swap",
                   "Swap in use (SwapTotal - SwapFree) and swapped pages also in the page cache "
                   "(SwapCached).", "bytes",
                   [target(f"{mem('SwapTotal')} - {mem('SwapFree')}", "used"),
                    target(mem("SwapCached"), "swap cache")]),
        timeseries("Swapping and major page faults",
                   "Pages swapped in and out per second (/proc/vmstat pswpin, pswpout) and "
                   "major page faults per second (pgmajfault: faults that needed I/O).", "cps",
                   [target(rate("node_vmstat_pswpin"), "pages swapped in"),
                    target(rate("node_vmstat_pswpout"), "pages swapped out"),
                    target(rate("node_vmstat_pgmajfault"), "major faults")]),
        row("Disks and I/O"),
        timeseries("I/O pressure",
                   "PSI io: share of time at least one task waited for I/O (some) and time "
                   "every non-idle task did (full), /proc/pressure/io.", "percentunit",
                   [target(rate("node_pressure_io_waiting_seconds_total"), "some"),
                    target(rate("node_pressure_io_stalled_seconds_total"), "full")]),
        timeseries("Disk throughput",
                   "Bytes read and written per second, per disk (/proc/diskstats; partitions, "
                   "loop and ram devices left out).", "Bps",
                   [target(rate("node_disk_read_bytes_total"), "{{device}} read"),
                    target(rate("node_disk_written_bytes_total"), "{{device}} written")]),
        timeseries("Disk operations",
                   "Reads and writes completed per second, per disk.", "iops",
                   [target(rate("node_disk_reads_completed_total"), "{{device}} reads"),
                    target(rate("node_disk_writes_completed_total"), "{{device}} writes")]),
        timeseries("Disk latency",
                   "Average time a read or a write took, per disk (time spent over operations "
                   "completed in each interval).", "s",
                   [target(f"{rate('node_disk_read_time_seconds_total')} / "
                           f"{rate('node_disk_reads_completed_total')}", "{{device}} read"),
                    target(f"{rate('node_disk_write_time_seconds_total')} / "
                           f"{rate('node_disk_writes_completed_total')}", "{{device}} write")]),
        timeseries("Disk busy time",
                   "Share of time each disk had I/O in flight (io_ticks); near 100% a "
                   "single-queue disk is saturated.", "percentunit",
                   [target(rate("node_disk_io_time_seconds_total"), "{{device}}")],
                   max_value=1),
        timeseries("I/Os in flight",
                   "Requests issued to each disk and not yet completed.", "short",
                   [target(sel("node_disk_io_now", H), "{{device}}")]),
        row("File systems"),
        bargauge("Space used",
                 "Share of each file system's space used, as seen by non-root users "
                 "(1 - avail / size).", "percentunit",
                 [target(f"1 - {sel('node_filesystem_avail_bytes', H)} / "
                         f"({sel('node_filesystem_size_bytes', H)} > 0)", "{{mountpoint}}",
                         instant=True)],
                 steps=((None, "green"), (0.8, "orange"), (0.95, "red")), max_value=1),
        bargauge("Inodes used",
                 "Share of each file system's inodes in use.", "percentunit",
                 [target(f"1 - {sel('node_filesystem_files_free', H)} / "
                         f"({sel('node_filesystem_files', H)} > 0)", "{{mountpoint}}",
                         instant=True)],
                 steps=((None, "green"), (0.8, "orange"), (0.95, "red")), max_value=1),
        timeseries("Space available",
                   "Bytes available to non-root users on each file system.", "bytes",
                   [target(sel("node_filesystem_avail_bytes", H), "{{mountpoint}}")]),
        stat("Read-only file systems",
             "Mounted file systems that are read-only, and those whose statistics could not "
             "be read (device errors). A file system the kernel remounted read-only after an "
             "error shows here.", "none",
             [target(f"sum({sel('node_filesystem_readonly', H)})", "read-only", instant=True),
              target(f"sum({sel('node_filesystem_device_error', H)})", "device errors",
                     instant=True)],
             w=12, h=8, steps=((None, "green"), (1, "orange"))),
        row("Agent"),
        timeseries("Agent connected",
                   "1 while the host's kfleet agent has a session with the controller; when it "
                   "is 0 the host's other series stop.", "none",
                   [target(f"max({sel('kfleet_host_up', H)})", "connected")], max_value=1),
        timeseries("Age of the latest sample",
                   "Seconds between the host's clock at its latest sample and Prometheus' "
                   "clock: about the sampling interval plus the scrape interval when the agent "
                   "reports normally; a constant offset is clock skew.", "s",
                   [target(f"time() - max({sel('node_time_seconds', H)})", "age")], min0=False),
    ]
    return dashboard("kfleet-host", "kfleet / Host detail",
                     "One kfleet host in detail: CPU, load, memory, PSI, swap, OOM kills, disks, "
                     "file systems and its agent.",
                     panels, False, [oom_annotation(H)])


# --- Jobs and tests ----------------------------------------------------------------------------

def jobs():
    S, C = FLEET_HOSTS, CONTROLLER
    oom_kills = sel("node_vmstat_oom_kill", S)
    test_results = sel("kfleet_test_results_total", C)
    tests_total = bargauge(
        "Tests passed, failed, skipped per suite",
        "Test results stored in the time range, by suite (kselftest, fstests, blktests, exec) "
        "and status: pass, fail, skip, and error (not judged: the host crashed or went away, "
        "the output was cut short). Re-runs of failures count again. kctl results JOB lists "
        "them by test and kernel.", "none",
        [target(f"sum by (suite, status) (increase({test_results}[$__range])) > 0",
                "{{suite}} {{status}}", instant=True)], decimals=0)
    tests_total["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byRegexp", "options": f".* {status}$"},
         "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
        for status, color in (("pass", "green"), ("fail", "red"), ("error", "orange"),
                              ("skip", "text"))]
    panels = [
        row("Now"),
        stat("Commands waiting or running",
             "Commands pending (waiting for a host), accepted by an agent, and running.", "none",
             [target(f"sum by (state) ({sel('kfleet_commands', C, WAITING_OR_RUNNING)})",
                     "{{state}}", instant=True)], w=10),
        stat("Jobs running",
             "Jobs that have not ended: some of their commands are pending, accepted or "
             "running.", "none",
             [target(f"sum({sel('kfleet_jobs', C, JOB_RUNNING)})", "running",
                     instant=True)], w=6),
        stat("OOM kills in time range",
             "Processes the kernel's OOM killer killed on the selected hosts in the time range. "
             "kctl events --kind oom names the command each kill hit; a command whose own "
             "process was killed ends FAIL with 'OOM-killed: memory limit ... reached'.", "none",
             [target(f"sum(increase({oom_kills}[$__range]))", "OOM kills", instant=True)],
             w=8, steps=OOM_STEPS, decimals=0),
        row("Commands and jobs"),
        timeseries("Commands by state",
                   "Commands in the controller's store, by state: pending (waiting for a host), "
                   "accepted, running, finished, skipped.", "none",
                   [target(f"sum by (state) ({sel('kfleet_commands', C)})", "{{state}}")]),
        timeseries("Jobs by state", "Jobs in the controller's store: running and done.", "none",
                   [target(f"sum by (state) ({sel('kfleet_jobs', C)})", "{{state}}")]),
        timeseries("Commands dispatched",
                   "Commands sent to agents per second.", "cps",
                   [target(f"sum(rate({sel('kfleet_dispatch_latency_seconds_count', C)}"
                           f"[$__rate_interval]))", "dispatched")]),
        timeseries("Dispatch latency",
                   "Time from a command's creation to its sending to an agent, waiting for a "
                   "free host included: median, 95th and 99th percentile.", "s",
                   [target(f"histogram_quantile({q}, sum by (le) (rate("
                           f"{sel('kfleet_dispatch_latency_seconds_bucket', C)}"
                           f"[$__rate_interval])))", f"p{int(q * 100)}")
                    for q in (0.5, 0.95, 0.99)]),
        row("Tests"),
        tests_total,
        timeseries("Test results by suite and status",
                   "Test results stored per interval, by suite and status, as the agents report "
                   "them (re-runs of failures included; a lost host's unfinished tests as "
                   "error). Only suites and statuses with results are drawn.", "none",
                   [target(f"sum by (suite, status) (increase({test_results}"
                           f"[$__rate_interval])) > 0", "{{suite}} {{status}}")], bars=True),
        row("OOM kills and guests"),
        timeseries("OOM kills by host",
                   "Processes the kernel's OOM killer killed, per host; the red marks are the "
                   "same kills. kctl events --host HOST --kind oom names the command each hit.",
                   "none",
                   [target(f"sum by (host) (increase({oom_kills}[$__rate_interval]))",
                           "{{host}}")], bars=True),
        timeseries("Guest provider calls",
                   "Calls to the providers that create, destroy and power-cycle guests (libvirt, "
                   "exec), by provider, operation and result (ok or error).", "none",
                   [target(f"sum by (provider, op, result) (increase("
                           f"{sel('kfleet_provider_operations_total', C)}[$__rate_interval]))",
                           "{{provider}} {{op}} {{result}}")], bars=True),
    ]
    return dashboard("kfleet-jobs", "kfleet / Jobs and tests",
                     "What kfleet is running: commands and jobs by state, dispatch latency, "
                     "test results by suite and status, OOM kills on the hosts running them and "
                     "guest provider calls.",
                     panels, True, [oom_annotation(S)])

# --- Mail host ----------------------------------------------------------------------------------

# The schedule metrics carry `host` and `schedule` only (not the host's labels such as `pool`): the
# host variable, which lists the hosts of the selected pools, selects them.
SCHEDULES = 'job="$job",host="$host",schedule=~"$schedule"'
RESULT_COLORS = (("pass", "green"), ("fail", "red"), ("oom", "dark-red"), ("timeout", "orange"))
UNIT_RESULT_COLORS = (("success", "green"), ("exit-code", "red"), ("signal", "red"),
                      ("core-dump", "red"), ("oom-kill", "dark-red"), ("timeout", "orange"))


def color_by_suffix(colors):
    """Overrides that colour a series whose name ends in ' KEY' as `colors` says."""
    return [{"matcher": {"id": "byRegexp", "options": f".* {key}$"},
             "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
            for key, color in colors]


def schedule_variables():
    schedule = query_variable(
        "schedule", "Schedule",
        'label_values(kfleet_schedule_last_run_timestamp_seconds{job="$job",host="$host"}, '
        'schedule)',
        "Schedules that ran on the host (kctl schedule ls).", multi=True, include_all=True)
    # kfleet exports no schedule's interval: the user says it, in seconds.
    interval = {"name": "interval", "label": "Schedule interval (s)", "type": "textbox",
                "query": "300", "current": {"text": "300", "value": "300"},
                "options": [{"selected": True, "text": "300", "value": "300"}],
                "description": "The schedules' --every-after in seconds; a schedule whose last "
                               "run ended more than twice this long ago shows red.",
                "hide": 0, "skipUrlSync": False}
    return [schedule, interval]


def schedule_oom_annotation():
    return {"name": "Schedule OOM kills", "datasource": DS, "enable": True, "hide": False,
            "iconColor": "dark-red",
            "expr": f"sum by (host, schedule) (increase("
                    f"{sel('kfleet_schedule_oom_kills_total', SCHEDULES)}[$__rate_interval])) > 0",
            "titleFormat": "OOM kill in schedule {{schedule}}",
            "textFormat": "kctl schedule runs {{schedule}} --host {{host}}",
            "tagKeys": "schedule", "useValueForTime": False}


def mailhost():
    H, S = ONE_HOST, SCHEDULES
    runs = sel("kfleet_schedule_runs_total", S)
    last_run = sel("kfleet_schedule_last_run_timestamp_seconds", S)
    last_result = stat(
        "Last result",
        "The result of each schedule's latest run in the time range, and when the run's count "
        "went up: pass, fail (cancelled too), oom (OOM-killed, e.g. over --memory-max), timeout. "
        "Read from kfleet_schedule_runs_total at the dashboard's resolution: two runs of one "
        "schedule ending within a few scrapes of each other may show either result. kctl "
        "schedule runs NAME lists them.", "dateTimeFromNow",
        [target(f"topk by (schedule) (1, max by (schedule, result) (max_over_time(timestamp("
                f"increase({runs}[$__rate_interval]) > 0)[$__range:$__interval]))) * 1000",
                "{{schedule}} {{result}}", instant=True)], w=8, h=6)
    last_result["options"]["textMode"] = "value_and_name"
    last_result["fieldConfig"]["overrides"] = color_by_suffix(RESULT_COLORS)
    runs_total = bargauge(
        "Runs in time range",
        "Runs of each schedule that ended in the time range, by result.", "none",
        [target(f"sum by (schedule, result) (increase({runs}[$__range])) > 0",
                "{{schedule}} {{result}}", instant=True)], w=8, h=6, decimals=0)
    runs_total["fieldConfig"]["overrides"] = color_by_suffix(RESULT_COLORS)
    runs_by_result = timeseries(
        "Runs by result",
        "Runs of each schedule that ended per interval, by result (only results with runs are "
        "drawn).", "none",
        [target(f"sum by (schedule, result) (increase({runs}[$__rate_interval])) > 0",
                "{{schedule}} {{result}}")], bars=True)
    runs_by_result["fieldConfig"]["overrides"] = color_by_suffix(RESULT_COLORS)
    age = timeseries(
        "Time since last run",
        "Seconds since each schedule's last run ended (by the host's clock), and twice the "
        "interval set at the top (the red line): a schedule above it missed a run. It falls "
        "back at every run.", "s",
        [target(f"max by (schedule) (time() - {last_run})", "{{schedule}}"),
         target("2 * $interval", "2 × interval")])
    age["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byFrameRefID", "options": "B"},
         "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "custom.fillOpacity", "value": 0}]}]
    # Units the host's agent watches (kfleet-agent --watch-units): systemd exports each one's
    # timer interval, so each is judged against its own.
    unit_last = sel("kfleet_unit_last_run_timestamp_seconds", H)
    unit_interval = sel("kfleet_unit_timer_interval_seconds", H)
    unit_intervals_ago = stat(
        "Units: last run, intervals ago",
        "Time since each watched unit's last run ended, in intervals of its own timer "
        "(OnUnitInactiveSec): about 1 on time, red from 2 on (a run missed).", "none",
        [target(f"max by (unit) ((time() - {unit_last}) / ({unit_interval} > 0))", "{{unit}}",
                instant=True)],
        w=8, h=6, steps=((None, "green"), (1.5, "orange"), (2, "red")), decimals=1)
    unit_last_result = stat(
        "Units: last result",
        "systemd's result of each watched unit's last run (success, exit-code, signal, "
        "oom-kill, timeout...); oom-kill also when systemd said signal but the kernel's OOM "
        "report names the unit. systemctl status UNIT, journalctl -u UNIT.", "none",
        [target(f"max by (unit, result) ({sel('kfleet_unit_last_result', H)}) == 1",
                "{{unit}} {{result}}", instant=True)], w=8, h=6)
    unit_last_result["options"]["textMode"] = "name"
    unit_last_result["fieldConfig"]["overrides"] = color_by_suffix(UNIT_RESULT_COLORS)
    unit_runs = bargauge(
        "Units: runs in time range",
        "Runs of each watched unit that ended in the time range, by systemd's result.", "none",
        [target(f"sum by (unit, result) (increase("
                f"{sel('kfleet_unit_runs_total', H)}[$__range])) > 0",
                "{{unit}} {{result}}", instant=True)], w=8, h=6, decimals=0)
    unit_runs["fieldConfig"]["overrides"] = color_by_suffix(UNIT_RESULT_COLORS)
    panels = [
        row("Schedules"),
        stat("Last run, intervals ago",
             "Time since each schedule's last run ended, in intervals (the Schedule interval "
             "set at the top): about 1 while it runs on time, red from 2 on (a run missed).",
             "none",
             [target(f"max by (schedule) (time() - {last_run}) / $interval", "{{schedule}}",
                     instant=True)],
             w=8, h=6, steps=((None, "green"), (1.5, "orange"), (2, "red")), decimals=1),
        last_result,
        runs_total,
        row("Runs"),
        age,
        runs_by_result,
        row("Last run"),
        timeseries("Duration of the last run",
                   "Wall time of each schedule's last run; it changes when a run ends.", "s",
                   [target(f"max by (schedule) "
                           f"({sel('kfleet_schedule_last_duration_seconds', S)})",
                           "{{schedule}}")]),
        timeseries("Peak memory of the last run",
                   "Peak memory of the last run's cgroup (its rusage max RSS on a host without "
                   "cgroups). Near --memory-max the next run may be OOM-killed.", "bytes",
                   [target(f"max by (schedule) "
                           f"({sel('kfleet_schedule_last_peak_memory_bytes', S)}) > 0",
                           "{{schedule}}")]),
        row("Watched units"),
        unit_intervals_ago,
        unit_last_result,
        unit_runs,
        timeseries("Units: duration of the last run",
                   "How long each watched unit's last run took (main process start to exit); "
                   "it changes when a run ends.", "s",
                   [target(f"max by (unit) ({sel('kfleet_unit_last_duration_seconds', H)})",
                           "{{unit}}")], w=8),
        timeseries("Units: peak memory of the last run",
                   "The highest memory.peak of each watched unit's cgroup read while its last "
                   "run ran; near the unit's MemoryMax= the next run may be OOM-killed.",
                   "bytes",
                   [target(f"max by (unit) ({sel('kfleet_unit_last_peak_memory_bytes', H)})",
                           "{{unit}}")], w=8),
        timeseries("Units: OOM kills",
                   "Kernel OOM kills of processes in each watched unit's cgroup; kctl events "
                   "--kind oom marks them [unit NAME].", "none",
                   [target(f"sum by (unit) (increase("
                           f"{sel('kfleet_unit_oom_kills_total', H)}[$__rate_interval]))",
                           "{{unit}}")], w=8, bars=True),
        row("Memory"),
        timeseries("OOM kills by schedule",
                   "Kernel OOM kills in the cgroups of each schedule's runs; the dark red marks "
                   "are the same kills, the red ones every OOM kill on the host. kctl schedule "
                   "runs NAME --host HOST shows the runs, kctl events --kind oom the victims.",
                   "none",
                   [target(f"sum by (schedule) (increase("
                           f"{sel('kfleet_schedule_oom_kills_total', S)}[$__rate_interval]))",
                           "{{schedule}}")], bars=True),
        timeseries("Memory pressure",
                   "PSI memory of the host: share of time at least one task waited for memory "
                   "(some) and time every non-idle task did (full), /proc/pressure/memory.",
                   "percentunit",
                   [target(f"rate({sel(psi, H)}[$__rate_interval])", legend)
                    for psi, legend in (("node_pressure_memory_waiting_seconds_total", "some"),
                                        ("node_pressure_memory_stalled_seconds_total", "full"))]),
    ]
    return dashboard("kfleet-mailhost", "kfleet / Mail host",
                     "A host's schedules (kctl schedule), such as a mail server's fetches: when "
                     "each last ran and how it ended, runs by result, OOM kills, the last run's "
                     "duration and peak memory, and the host's memory pressure.",
                     panels, False, [oom_annotation(H), schedule_oom_annotation()],
                     extra_variables=schedule_variables())


DASHBOARDS = {
    "kfleet-fleet.json": fleet,
    "kfleet-host.json": host,
    "kfleet-jobs.json": jobs,
    "kfleet-mailhost.json": mailhost,
}


def render(build):
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="directory to write the dashboards to (default: this script's)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file in --out differs")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(args.out, name)
        text = render(build)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() == text:
                        continue
            except FileNotFoundError:
                pass
            stale.append(path)
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if stale:
        print("out of date (run python3 dashboards/generate.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
