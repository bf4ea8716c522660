#!/usr/bin/env python3
"""The dashboards built through Grafana's Foundation SDK, compared with build_dashboards.py's.

    pip install --no-deps grafana-foundation-sdk==1769699241   # the build for current Grafana
    python grafana/sdk_comparison.py

The same board functions (build_dashboards.router_board, ...) run with a Board whose panels are
made by the SDK's builders instead of dicts; each panel's type, title, position, id,
description, unit, no-value text, thresholds, mappings, queries and options are compared with
ours, and our committed JSON is loaded into the SDK's dashboard model and written back. Prints
each difference; exit 1 if any. The verdict and the figures: docs/DEVELOPMENT.md (Dashboards).
Not part of the test suite: the SDK is not a dependency (the verdict was to keep our builder).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import build_dashboards as ours
from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    gauge,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

KINDS = {"stat": stat.Panel, "gauge": gauge.Panel, "timeseries": timeseries.Panel,
         "table": table.Panel, "bargauge": bargauge.Panel}  # fmt: skip
DS = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
HandBoard = ours.Board


class SdkBoard(HandBoard):
    """Our layout and arguments; the SDK's builders make the dashboard and its panels."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        super().__init__(uid, title, description)
        link = (dashboard.DashboardLink("Stratum").type(dm.DashboardLinkType.DASHBOARDS)
                .tags(["stratum"]).as_dropdown(True))  # fmt: skip
        self.sdk = (
            dashboard.Dashboard(title).uid(uid).description(description).tags(["stratum"])
            .timezone("browser").readonly().tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .refresh("10s").time("now-1h", "now").version(1).link(link)
        )  # fmt: skip

    def row(self, title: str) -> None:
        super().row(title)
        p = self.panels[-1]
        self.sdk.with_row(dashboard.Row(title).id(p["id"]).grid_pos(dm.GridPos(**p["gridPos"])))

    def panel(self, kind: str, title: str, targets: list[tuple[str, str]], **kw: Any) -> None:
        super().panel(kind, title, targets, **kw)
        p = self.panels[-1]
        fd = p["fieldConfig"]["defaults"]
        steps = [
            dm.Threshold(value=s["value"], color=s["color"]) for s in fd["thresholds"]["steps"]
        ]
        b = (
            KINDS[kind]().id(p["id"]).title(title).description(p["description"]).datasource(DS)
            .grid_pos(dm.GridPos(**p["gridPos"])).unit(fd["unit"]).no_value(fd["noValue"])
            .thresholds(dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
        )  # fmt: skip
        if fd["mappings"]:
            b = b.mappings([
                dm.ValueMap(options={k: dm.ValueMappingResult(text=v["text"], color=v["color"])
                                     for k, v in m["options"].items()})
                for m in fd["mappings"]
            ])  # fmt: skip
        for t in p["targets"]:
            q = (prometheus.Dataquery().ref_id(t["refId"]).expr(t["expr"])
                 .legend_format(t["legendFormat"]).datasource(DS)
                 .format(pm.PromQueryFormat(t["format"])))  # fmt: skip
            b = b.with_target(q.instant() if t["instant"] else q.range())
        if kind == "bargauge" and p["options"]:
            b = b.display_mode(cm.BarGaugeDisplayMode(p["options"]["displayMode"]))
            b = b.orientation(cm.VizOrientation(p["options"]["orientation"]))
        self.sdk.with_panel(b)


def facts(p: dict[str, Any]) -> dict[str, Any]:
    """What a panel shows, as both builders write it."""
    fd = p.get("fieldConfig", {}).get("defaults", {})
    query = ("refId", "expr", "legendFormat", "instant", "format")
    return {
        "type": p["type"], "title": p["title"], "gridPos": p["gridPos"], "id": p.get("id"),
        "description": p.get("description"), "unit": fd.get("unit"),
        "noValue": fd.get("noValue"), "thresholds": fd.get("thresholds"),
        "mappings": fd.get("mappings") or [],
        "targets": [{k: t.get(k) for k in query} | {"range": bool(t.get("range"))}
                    for t in p.get("targets", [])],
        "options": {k: v for k, v in (p.get("options") or {}).items()
                    if k in ("displayMode", "orientation")},
    }  # fmt: skip


def lost_in_round_trip(data: Any, back: Any, path: str = "") -> list[str]:
    """Keys of ``data`` missing or changed in ``back``."""
    if isinstance(data, dict):
        if not isinstance(back, dict):
            return [path]
        return [lost for k, v in data.items()
                for lost in ([f"{path}.{k}"] if k not in back
                             else lost_in_round_trip(v, back[k], f"{path}.{k}"))]  # fmt: skip
    if isinstance(data, list):
        if not isinstance(back, list) or len(back) != len(data):
            return [path]
        return [lost for i, (a, b) in enumerate(zip(data, back, strict=True))
                for lost in lost_in_round_trip(a, b, f"{path}[{i}]")]  # fmt: skip
    return [] if data == back else [f"{path}: {data!r} -> {back!r}"]


def main() -> int:
    differences = 0
    for name, make in ours.BOARDS.items():
        setattr(ours, "Board", HandBoard)  # noqa: B010
        mine = json.loads(json.dumps(make().json()))
        setattr(ours, "Board", SdkBoard)  # noqa: B010 (the board functions build what Board is)
        board = make()
        assert isinstance(board, SdkBoard)
        sdk = json.loads(json.dumps(board.sdk.build(), cls=JSONEncoder))
        for a, b in zip(mine["panels"], sdk["panels"], strict=True):
            if (fa := facts(a)) != (fb := facts(b)):
                differences += 1
                print(f"{name} / {a['title']}:", {k: (fa[k], fb[k]) for k in fa if fa[k] != fb[k]})
        loaded = dm.Dashboard.from_json(json.loads((ours.OUT / name).read_text()))
        back = json.loads(json.dumps(loaded, cls=JSONEncoder))
        lost = lost_in_round_trip(json.loads((ours.OUT / name).read_text()), back)
        differences += len(lost)
        print(f"{name}: {len(mine['panels'])} panels and rows, the same through the SDK; "
              f"schemaVersion ours {mine['schemaVersion']}, SDK {sdk['schemaVersion']}; keys only "
              f"the SDK writes: {sorted(set(sdk) - set(mine))}; through the SDK's model: "
              f"{lost or 'nothing lost'}")  # fmt: skip
    setattr(ours, "Board", HandBoard)  # noqa: B010
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
