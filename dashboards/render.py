#!/usr/bin/env python3
"""Draws a kfleet Grafana dashboard as one PNG, from a Prometheus server, without Grafana.

  python3 dashboards/render.py --prometheus http://127.0.0.1:9090 \\
      --dashboard dashboards/kfleet-mailhost.json --last 30m \\
      --var host=mail-1 --var interval=300 --out mail-host.png

Each panel's queries run through Prometheus' HTTP API: time series panels as range queries over
the window, stat, bar gauge and table panels as instant queries at its end. Panels are placed as
their gridPos says (24 columns, as Grafana does); time series become lines or bars with the
dashboard's annotations as vertical marks, stat panels text tiles, bar gauges horizontal bars,
tables text tables. Units label the axes and values. It prints, as JSON, how many panels it drew
and the titles of those without data. Variables not given with --var take the
dashboard's default (textbox), all values (a variable with All) or the first value Prometheus
lists for their label_values() query.

Needs python3-matplotlib (Debian). It is a picture of the queries' data for docs and test
artifacts, not a copy of Grafana's rendering.
"""
import argparse
import datetime
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

GRID_COLUMNS = 24
FIGURE_WIDTH_IN = 16.0
GRID_ROW_IN = 0.3  # Grafana's grid row is 30 px on a ~1600 px wide dashboard
COLORS = {"green": "#2ca02c", "red": "#d62728", "dark-red": "#8b0000", "orange": "#ff7f0e",
          "text": "#555555", "yellow": "#d4b000", "blue": "#1f77b4"}
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


# --- Prometheus ------------------------------------------------------------------------------

class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{url}: {body}")
        return body["data"]

    def instant(self, expr, at):
        data = self.get("query", query=expr, time=at)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def range(self, expr, start, end, step):
        return self.get("query_range", query=expr, start=start, end=end, step=step)["result"]


# --- variables -------------------------------------------------------------------------------

def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"variable ${name} has no value: give it with --var {name}=VALUE")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def resolve_variables(doc, given, prom, start, end, step, scrape_s):
    values = {"__interval": f"{step}s",
              "__rate_interval": f"{max(step + scrape_s, 4 * scrape_s)}s",
              "__range": f"{int(end - start)}s"}
    for v in doc.get("templating", {}).get("list", []):
        name, kind = v.get("name"), v.get("type")
        if name in given:
            values[name] = given[name]
        elif kind == "datasource":
            values[name] = "prometheus"
        elif kind in ("textbox", "constant", "custom"):
            values[name] = str(v.get("current", {}).get("value") or v.get("query", ""))
        elif kind == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            m = LABEL_VALUES.match(q.strip())
            if v.get("includeAll") and v.get("allValue"):
                values[name] = v["allValue"]
            elif m:
                found = prom.get(f"label/{m.group(2)}/values",
                                 **{"match[]": substitute(m.group(1), values)},
                                 start=start, end=end)
                if not found:
                    raise SystemExit(f"variable {name}: {q} lists nothing; give --var {name}=")
                values[name] = found[0]
    return values


# --- units and labels ------------------------------------------------------------------------

def fmt(value, unit):
    """The value as Grafana would show it, roughly."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit in ("bytes", "Bps"):
        suffix = "/s" if unit == "Bps" else ""
        for prefix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or prefix == "TiB":
                return f"{value:.3g} {prefix}{suffix}"
            value /= 1024
    if unit == "s":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value * 1000:.3g} ms" if value else "0 s"
    if unit == "dateTimeFromNow":
        return fmt(time.time() - value / 1000, "s") + " ago"
    if unit in ("cps", "iops"):
        return f"{value:.3g}/s"
    return f"{value:.3g}"


def axis_label(unit):
    return {"percentunit": "%", "bytes": "bytes", "Bps": "bytes/s", "s": "seconds",
            "cps": "per second", "iops": "I/O per second", "none": "", "short": ""}.get(unit, unit)


def legend(fmt_string, metric):
    if fmt_string:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt_string)
    return ",".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__") or "value"


def fixed_color(panel, name, ref):
    """The colour an override gives series `name` of query `ref`, or None."""
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        matcher, option = o.get("matcher", {}).get("id"), o.get("matcher", {}).get("options", "")
        if ((matcher == "byRegexp" and re.fullmatch(option, name))
                or (matcher == "byName" and option == name)
                or (matcher == "byFrameRefID" and option == ref)):
            for prop in o.get("properties", []):
                if prop.get("id") == "color":
                    return COLORS.get(prop["value"].get("fixedColor"), prop["value"].get(
                        "fixedColor"))
    return None


def dashed(panel, ref):
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o.get("matcher") == {"id": "byFrameRefID", "options": ref}:
            return any(p.get("id") == "custom.lineStyle" for p in o.get("properties", []))
    return False


def threshold_color(panel, value):
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
    color = "green"
    for s in steps or []:
        if s.get("value") is None or (value is not None and value >= s["value"]):
            color = s["color"]
    return COLORS.get(color, color)


# --- panels ----------------------------------------------------------------------------------

class Renderer:
    def __init__(self, prom, doc, values, start, end, step, row_frac):
        self.prom, self.doc, self.values = prom, doc, values
        self.row_frac = row_frac  # one grid row, as a fraction of the figure's height
        self.errors = []
        self.drawn, self.empty = 0, []  # panels drawn, and the titles of those without data
        self.start, self.end, self.step = start, end, step
        self.marks = []  # (time, color) of every annotation
        for a in doc.get("annotations", {}).get("list", []):
            if not a.get("enable") or not a.get("expr"):
                continue
            color = COLORS.get(a.get("iconColor"), a.get("iconColor", "red"))
            for series in prom.range(substitute(a["expr"], values), start, end, step):
                self.marks += [(float(t), color) for t, v in series["values"]
                               if math.isfinite(float(v))]

    def series(self, panel, instant):
        self.drawn += 1
        out = []  # (name, refId, metric, values)
        for t in panel.get("targets", []):
            expr = substitute(t["expr"], self.values)
            if instant:
                result = self.prom.instant(expr, self.end)
                for s in result:
                    out.append((legend(t.get("legendFormat"), s["metric"]), t["refId"],
                                s["metric"], [(self.end, float(s["value"][1]))]))
            else:
                for s in self.prom.range(expr, self.start, self.end, self.step):
                    out.append((legend(t.get("legendFormat"), s["metric"]), t["refId"],
                                s["metric"], [(float(a), float(b)) for a, b in s["values"]]))
        if not any(math.isfinite(v) for d in out for _, v in d[3]):
            self.empty.append(panel.get("title", ""))
        return out

    def draw(self, fig, panel, box):
        left, bottom, width, height = box
        kind = panel.get("type")
        title = panel.get("title", "")
        if kind == "row":
            fig.text(left + 0.003, bottom + height / 2, title, fontsize=12, weight="bold",
                     va="center")
            fig.add_artist(plt.Line2D([left, left + width], [bottom, bottom], color="#bbbbbb",
                                      lw=0.8))
            return
        frame = fig.add_axes([left + 0.003, bottom + 0.003, width - 0.006, height - 0.006])
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color("#cccccc")
        frame.set_facecolor("#fafafa")
        frame.set_zorder(-1)
        fig.text(left + 0.008, bottom + height - 0.6 * self.row_frac, title, fontsize=9.5,
                 weight="bold", va="center")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
        inner = [left + 0.01, bottom + 0.2 * self.row_frac, width - 0.02,
                 height - 1.4 * self.row_frac]
        try:
            getattr(self, "draw_" + kind)(fig, panel, inner, unit)
        except Exception as e:  # a broken panel is drawn as its error, the others still are
            fig.text(inner[0], inner[1] + inner[3] / 2, f"error: {e}", fontsize=7, color="red")
            self.errors.append(f"panel {title!r}: {e}")

    def draw_timeseries(self, fig, panel, box, unit):
        left, bottom, width, height = box
        ax = fig.add_axes([left + 0.035, bottom + height * 0.3, width - 0.045, height * 0.7])
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
        bars = custom.get("drawStyle") == "bars"
        data = self.series(panel, instant=False)
        width_days = self.step / 86400 * 0.8
        # Bytes are drawn in the binary unit of the largest value, so that the ticks are round.
        scale, scaled_unit = 1, axis_label(unit)
        if unit in ("bytes", "Bps"):
            top = max((abs(v) for d in data for _, v in d[3] if math.isfinite(v)), default=0)
            for prefix in ("KiB", "MiB", "GiB", "TiB"):
                if top < 1024 * scale:
                    break
                scale *= 1024
                scaled_unit = prefix + ("/s" if unit == "Bps" else "")
        stacked = {}  # bars of several series stack instead of hiding each other
        for i, (name, ref, _, points) in enumerate(data):
            xs = [datetime.datetime.fromtimestamp(t, datetime.timezone.utc) for t, _ in points]
            ys = [v * 100 if unit == "percentunit" else v / scale for _, v in points]
            color = fixed_color(panel, name, ref) or f"C{i % 10}"
            if bars:
                bottoms = [stacked.get(t, 0) for t, _ in points]
                ax.bar(xs, ys, width=width_days, bottom=bottoms, color=color, label=name,
                       alpha=0.85)
                for (t, _), y, b in zip(points, ys, bottoms):
                    stacked[t] = b + (y if math.isfinite(y) else 0)
            else:
                ax.plot(xs, ys, color=color, label=name, lw=1.2,
                        ls="--" if dashed(panel, ref) else "-")
        for t, color in self.marks:
            ax.axvline(datetime.datetime.fromtimestamp(t, datetime.timezone.utc), color=color,
                       lw=0.6, alpha=0.35)
        ax.set_xlim(datetime.datetime.fromtimestamp(self.start, datetime.timezone.utc),
                    datetime.datetime.fromtimestamp(self.end, datetime.timezone.utc))
        if panel.get("fieldConfig", {}).get("defaults", {}).get("min") == 0:
            ax.set_ylim(bottom=0)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
        if unit == "s":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v, unit)))
        ax.set_ylabel(scaled_unit, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if data:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.14),
                      ncol=min(len(data), 4), frameon=False)
        else:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", color="#888888")

    def draw_stat(self, fig, panel, box, unit):
        left, bottom, width, height = box
        data = self.series(panel, instant=True)
        if not data:
            fig.text(left + width / 2, bottom + height / 2, "No data", ha="center",
                     color="#888888")
            return
        n = len(data)
        for i, (name, ref, _, points) in enumerate(data):
            value = points[-1][1]
            color = fixed_color(panel, name, ref) or threshold_color(panel, value)
            x = left + width * (i + 0.5) / n
            decimals = panel.get("fieldConfig", {}).get("defaults", {}).get("decimals")
            text = (f"{value:.{decimals}f}" if decimals is not None and unit in ("none", "short")
                    else fmt(value, unit))
            fig.text(x, bottom + height * 0.55, text, ha="center", va="center",
                     fontsize=max(8, 18 - 2 * n), weight="bold", color=color)
            fig.text(x, bottom + height * 0.15, name, ha="center", va="center", fontsize=7.5)

    def draw_bargauge(self, fig, panel, box, unit):
        left, bottom, width, height = box
        data = self.series(panel, instant=True)
        ax = fig.add_axes([left + width * 0.3, bottom + 0.005, width * 0.6, height * 0.95])
        names = [d[0] for d in data]
        values = [d[3][-1][1] for d in data]
        colors = [fixed_color(panel, n, d[1]) or threshold_color(panel, v)
                  for n, d, v in zip(names, data, values)]
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xticks([])
        decimals = panel.get("fieldConfig", {}).get("defaults", {}).get("decimals")
        for i, v in enumerate(values):
            text = (f"{v:.{decimals}f}" if decimals is not None and unit in ("none", "short")
                    else fmt(v, unit))
            ax.text(v, i, " " + text, va="center", fontsize=7)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if not data:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", color="#888888")

    def draw_table(self, fig, panel, box, unit):
        left, bottom, width, height = box
        overrides = {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
                     for o in panel.get("fieldConfig", {}).get("overrides", [])
                     if o.get("matcher", {}).get("id") == "byName"}
        organize = next((t["options"] for t in panel.get("transformations", [])
                         if t["id"] == "organize"), {})
        renamed = organize.get("renameByName", {})
        self.drawn += 1
        rows, columns = {}, ["host"]
        for t in panel.get("targets", []):
            key = f"Value #{t['refId']}"
            result = self.prom.instant(substitute(t["expr"], self.values), self.end)
            if organize.get("excludeByName", {}).get(key):  # a label column
                for label, title in renamed.items():
                    columns.append(title)
                    for s in result:
                        rows.setdefault(s["metric"].get("host", ""), {})[title] = \
                            s["metric"].get(label, "")
                continue
            props = overrides.get(key, {})
            title = props.get("displayName", key)
            columns.append(title)
            for s in result:
                rows.setdefault(s["metric"].get("host", ""), {})[title] = fmt(
                    float(s["value"][1]), props.get("unit", unit))
        cells = [[h] + [rows[h].get(c, "") for c in columns[1:]] for h in sorted(rows)]
        if not cells:
            self.empty.append(panel.get("title", ""))
        ax = fig.add_axes([left, bottom, width, height])
        ax.axis("off")
        if cells:
            tbl = ax.table(cellText=cells, colLabels=columns, loc="upper center",
                           cellLoc="left")
            tbl.auto_set_font_size(False)
            tbl.set_fontsize(7)
        else:
            ax.text(0.5, 0.5, "No data", ha="center", color="#888888")


def render(prom, doc, values, start, end, step, out):
    panels = [p for p in doc.get("panels", [])]
    panels += [inner for p in doc.get("panels", []) for inner in p.get("panels", []) or []]
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=1) + 3
    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, rows * GRID_ROW_IN))
    shown = {k: v for k, v in values.items() if not k.startswith("__") and k != "datasource"}
    window = (f"{datetime.datetime.fromtimestamp(start, datetime.timezone.utc):%Y-%m-%d %H:%M:%S}"
              f" to {datetime.datetime.fromtimestamp(end, datetime.timezone.utc):%H:%M:%S} UTC")
    fig.text(0.005, 1 - 1.2 / rows, doc.get("title", ""), fontsize=14, weight="bold", va="center")
    fig.text(0.005, 1 - 2.3 / rows,
             window + "   " + "  ".join(f"{k}={v}" for k, v in sorted(shown.items())),
             fontsize=8, color="#555555", va="center")
    renderer = Renderer(prom, doc, values, start, end, step, 1 / rows)
    for p in panels:
        g = p["gridPos"]
        box = (g["x"] / GRID_COLUMNS, 1 - (g["y"] + 3 + g["h"]) / rows,
               g["w"] / GRID_COLUMNS, g["h"] / rows)
        renderer.draw(fig, p, box)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(json.dumps({"panels": renderer.drawn, "no_data": renderer.empty}))
    return renderer.errors


def duration_s(text):
    m = re.fullmatch(r"(\d+)(s|m|h|d)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 90s, 30m, 6h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--dashboard", required=True, help="dashboard JSON file")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--last", type=duration_s, default=duration_s("1h"),
                        help="the window: this long up to --end (default 1h)")
    parser.add_argument("--start", type=float, help="window start, Unix seconds (or --last)")
    parser.add_argument("--end", type=float, help="window end, Unix seconds (default now)")
    parser.add_argument("--step", type=int, help="query_range step in seconds (default: the "
                        "window over 200, at least the scrape interval)")
    parser.add_argument("--scrape-interval", type=duration_s, default=duration_s("15s"),
                        help="Prometheus' scrape interval, for $__rate_interval (default 15s)")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a template variable's value (repeatable); a multi-value one as "
                             "a regex, e.g. host=(a|b)")
    args = parser.parse_args()
    end = args.end or time.time()
    start = args.start or end - args.last
    step = args.step or max(args.scrape_interval, int((end - start) / 200))
    given = dict(v.split("=", 1) for v in args.var)
    with open(args.dashboard, encoding="utf-8") as f:
        doc = json.load(f)
    prom = Prometheus(args.prometheus)
    values = resolve_variables(doc, given, prom, start, end, step, args.scrape_interval)
    errors = render(prom, doc, values, start, end, step, args.out)
    for e in errors:
        print(f"{args.dashboard}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
