"""The Superset import bundle, rendered from superset/dashboards.yaml for an environment: pure
Python, no Superset needed (unit-tested). Every object's UUID is derived from its name, so a second
import of the same bundle updates the same objects instead of adding new ones."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from urllib.parse import urlsplit

import jinja2
import yaml

from adagg.env import Namespace
from adagg.paths import REPO
from adagg.pinot import tables

SUPERSET_DIR = REPO / "superset"
SPEC = SUPERSET_DIR / "dashboards.yaml"
ROOT = "adagg_dashboards"  # the folder inside the zip, as Superset's own exports have one
_NAMESPACE = uuid.UUID("6f1c9a52-2d0e-4c4b-9a57-2b1f0f0ad0a9")
_SQL_TYPES = {"STRING": "VARCHAR", "LONG": "BIGINT", "INT": "INTEGER", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT",
              "BOOLEAN": "BOOLEAN"}
_VIZ = {"line": "echarts_timeseries_line", "bar": "echarts_timeseries_bar", "number": "big_number_total",
        "table": "table", "pie": "pie"}
_WIDTH = {"number": 3, "pie": 4}  # of Superset's 12 columns; the rest take 6


def object_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


def load_spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def database_uri(env: Namespace) -> str:
    """pinotdb's SQLAlchemy URI for the environment's broker and controller; a user name (if the
    environment gives one) with the password masked, as Superset's own exports write it."""
    broker = urlsplit(env.pinot.broker_url)
    user = env.get("superset", {}).get("pinot_username")
    auth = f"{user}:XXXXXXXXXX@" if user else ""
    return f"pinot+{broker.scheme}://{auth}{broker.netloc}/query/sql?controller={env.pinot.controller_url.rstrip('/')}/"


def _temporal(column: str, pinot_type: str, time_column: str) -> bool:
    return column == time_column or (pinot_type == "LONG" and column.endswith("_ms"))


def _dataset(spec, db_uuid: str) -> dict:
    """A dataset for one Pinot table: its columns from the Pinot schema, epoch-millis ones temporal."""
    time_column = spec.table_config["segmentsConfig"]["timeColumnName"]
    fields = [f for kind in ("dimensionFieldSpecs", "metricFieldSpecs", "dateTimeFieldSpecs")
              for f in spec.schema.get(kind, [])]
    columns = [{"column_name": f["name"], "type": _SQL_TYPES[f["dataType"]],
                "is_dttm": _temporal(f["name"], f["dataType"], time_column),
                "python_date_format": "epoch_ms" if _temporal(f["name"], f["dataType"], time_column) else None,
                "groupby": True, "filterable": True, "is_active": True, "expression": None, "description": None,
                "verbose_name": None, "extra": {}} for f in fields]
    return {"table_name": spec.name, "main_dttm_col": time_column, "description": None, "default_endpoint": None,
            "offset": 0, "cache_timeout": None, "schema": None, "sql": None, "params": None, "template_params": None,
            "filter_select_enabled": True, "fetch_values_predicate": None, "extra": {},
            "uuid": object_uuid("dataset", spec.name), "metrics": [], "columns": columns, "version": "1.0.0",
            "database_uuid": db_uuid, "normalize_columns": False, "always_filter_main_dttm": False}


def _metric(m: dict) -> dict:
    return {"expressionType": "SQL", "sqlExpression": m["sql"], "label": m["label"], "hasCustomLabel": True,
            "optionName": f"metric_{m['label']}"}


def _order(term: str) -> list:
    column, _, direction = term.partition(" ")
    return [column, direction.strip().upper() != "DESC"]


def chart_params(chart: dict, time_column: str) -> tuple[dict, dict]:
    """The chart's form data (what the UI draws from) and its query context (what the chart data API
    runs: the same query, without the UI's pivoting), for Superset's viz of the chart's kind."""
    kind, by = chart["kind"], chart.get("by", [])
    metrics = [_metric(m) for m in chart.get("metrics", [])] or [_metric(chart["metric"])]
    filters = [{"clause": "WHERE", "comparator": "No filter", "expressionType": "SIMPLE",
                "operator": "TEMPORAL_RANGE", "subject": time_column}]
    if chart.get("where"):
        filters.append({"clause": "WHERE", "expressionType": "SQL", "sqlExpression": chart["where"]})
    limit = chart.get("limit", 10_000)
    params = {"viz_type": _VIZ[kind], "adhoc_filters": filters, "row_limit": limit, "extra_form_data": {},
              "dashboards": []}
    columns: list = list(by)
    if kind in ("line", "bar"):
        params |= {"x_axis": time_column, "time_grain_sqla": chart["grain"], "metrics": metrics, "groupby": by,
                   "show_legend": True, "rich_tooltip": True, "x_axis_time_format": "smart_date",
                   "truncate_metric": True, "y_axis_format": "SMART_NUMBER"}
        columns = [{"timeGrain": chart["grain"], "columnType": "BASE_AXIS", "sqlExpression": time_column,
                    "label": time_column, "expressionType": "SQL"}, *by]
    elif kind == "number":
        params |= {"metric": metrics[0], "y_axis_format": "SMART_NUMBER", "header_font_size": 0.4,
                   "subheader_font_size": 0.15}
    elif kind == "pie":
        params |= {"metric": metrics[0], "groupby": by, "show_legend": True, "show_labels": True,
                   "label_type": "key_value_percent", "sort_by_metric": True}
    else:  # table
        params |= {"query_mode": "aggregate", "groupby": by, "metrics": metrics, "order_desc": True,
                   "timeseries_limit_metric": metrics[0], "server_page_length": 25, "table_timestamp_format": "smart_date",
                   "include_search": True}
    orderby = [_order(t) for t in chart.get("order_by", [])] or [[metrics[0], False]]
    query = {"filters": [{"col": time_column, "op": "TEMPORAL_RANGE", "val": "No filter"}],
             "extras": {"having": "", "where": chart.get("where", "")}, "applied_time_extras": {},
             "columns": columns, "metrics": metrics, "orderby": orderby, "annotation_layers": [],
             "row_limit": limit, "series_limit": 0, "order_desc": True, "url_params": {}, "custom_params": {},
             "custom_form_data": {}}
    context = {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [query], "form_data": params,
               "result_format": "json", "result_type": "full"}
    return params, context


def _position(title: str, charts: list[tuple[dict, str, int]]) -> dict:
    """Charts laid out left to right, a new row when 12 columns are full."""
    pos: dict = {"DASHBOARD_VERSION_KEY": "v2",
                 "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                 "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                 "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}}}
    row, used = None, 12
    for chart, chart_uuid, number in charts:
        width = _WIDTH.get(chart["kind"], 6)
        if used + width > 12:
            row, used = f"ROW-{len(pos['GRID_ID']['children']) + 1}", 0
            pos["GRID_ID"]["children"].append(row)
            pos[row] = {"type": "ROW", "id": row, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                        "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        used += width
        key = f"CHART-{number}"
        pos[row]["children"].append(key)
        pos[key] = {"type": "CHART", "id": key, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                    "meta": {"chartId": number, "uuid": chart_uuid, "width": width,
                             "height": 30 if chart["kind"] == "number" else 50, "sliceName": chart["name"]}}
    return pos


def _native_filters(filters: dict) -> list[dict]:
    dataset_uuid = object_uuid("dataset", filters["dataset"])
    return [{"id": f"NATIVE_FILTER-{column}", "name": column, "filterType": "filter_select", "type": "NATIVE_FILTER",
             "targets": [{"datasetUuid": dataset_uuid, "column": {"name": column}}],
             "controlValues": {"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                               "searchAllOptions": True, "inverseSelection": False},
             "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
             "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "description": ""}
            for column in filters["columns"]]


def render(env: Namespace) -> dict[str, str]:
    """Bundle path -> YAML text: metadata.yaml, databases/, datasets/, charts/, dashboards/."""
    spec = load_spec()
    db_uuid = object_uuid("database", spec["database"])
    template = jinja2.Template((SUPERSET_DIR / "database.yaml.j2").read_text(), undefined=jinja2.StrictUndefined)
    files = {"metadata.yaml": yaml.safe_dump({"version": "1.0.0", "type": "assets",
                                              "timestamp": "2026-12-07T00:00:00+00:00"}),
             "databases/pinot.yaml": template.render(name=spec["database"], uri=database_uri(env), uuid=db_uuid)}
    pinot = {t.name: t for t in tables(env)}
    used = {c["dataset"] for d in spec["dashboards"] for c in d["charts"]} | {d["filters"]["dataset"]
                                                                             for d in spec["dashboards"]}
    unknown = used - pinot.keys()
    if unknown:
        raise ValueError(f"{SPEC}: no Pinot table {', '.join(sorted(unknown))} (pinot/ has {', '.join(sorted(pinot))})")
    for name in sorted(used):
        files[f"datasets/pinot/{name}.yaml"] = yaml.safe_dump(_dataset(pinot[name], db_uuid), sort_keys=False)
    number = 0
    for dashboard in spec["dashboards"]:
        placed = []
        for chart in dashboard["charts"]:
            number += 1
            time_column = pinot[chart["dataset"]].table_config["segmentsConfig"]["timeColumnName"]
            params, context = chart_params(chart, time_column)
            chart_uuid = object_uuid("chart", f"{dashboard['slug']}/{chart['name']}")
            files[f"charts/{dashboard['slug']}_{number:02d}.yaml"] = yaml.safe_dump({
                "slice_name": chart["name"], "description": None, "certified_by": None, "certification_details": None,
                "viz_type": params["viz_type"], "params": params, "query_context": json.dumps(context),
                "cache_timeout": None, "uuid": chart_uuid, "version": "1.0.0",
                "dataset_uuid": object_uuid("dataset", chart["dataset"])}, sort_keys=False)
            placed.append((chart, chart_uuid, number))
        files[f"dashboards/{dashboard['slug']}.yaml"] = yaml.safe_dump({
            "dashboard_title": dashboard["title"], "description": dashboard.get("description"), "css": "",
            "slug": dashboard["slug"], "certified_by": "", "certification_details": "", "published": True,
            "uuid": object_uuid("dashboard", dashboard["slug"]), "position": _position(dashboard["title"], placed),
            "metadata": {"native_filter_configuration": _native_filters(dashboard["filters"]),
                         "refresh_frequency": dashboard.get("refresh_seconds", 0), "color_scheme": "supersetColors",
                         "expanded_slices": {}, "label_colors": {}, "timed_refresh_immune_slices": [],
                         "cross_filters_enabled": False, "default_filters": "{}", "chart_configuration": {}},
            "version": "1.0.0"}, sort_keys=False)
    return files


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in sorted(files.items()):
            z.writestr(f"{ROOT}/{path}", text)
    return out.getvalue()
