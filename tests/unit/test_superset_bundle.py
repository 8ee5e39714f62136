"""The Superset bundle rendered from superset/dashboards.yaml, without Superset: every object where
Superset's importer looks for it, stable UUIDs, the Pinot connection from the environment file
only, epoch-millis columns temporal, and every chart on a column its table has."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
import yaml

from adagg.env import Namespace, load, names
from adagg.pinot import schema_columns, tables
from adagg.superset_bundle import ROOT, database_uri, render, zipped

DASHBOARDS = {"live-ad-performance", "top-ads", "billing-and-reconciliation", "data-quality"}


@pytest.mark.parametrize("env_name", names())
def test_the_bundle_has_the_four_dashboards_on_the_environments_pinot(env_name):
    env = load(env_name)
    files = {path: yaml.safe_load(text) for path, text in render(env).items()}
    assert files["metadata.yaml"]["type"] == "assets"
    database = files["databases/pinot.yaml"]
    assert database["sqlalchemy_uri"] == database_uri(env)
    assert env.pinot.broker_url.split("://")[1] in database["sqlalchemy_uri"]
    assert f"controller={env.pinot.controller_url}" in database["sqlalchemy_uri"]
    assert {d["slug"] for p, d in files.items() if p.startswith("dashboards/")} == DASHBOARDS
    assert render(env) == render(env)  # stable: the same UUIDs each time, so a re-import updates in place


def test_no_credential_is_rendered():
    env = load("prod")  # an environment whose Pinot needs a login for Superset (none of ours does yet)
    env["superset"] = Namespace(pinot_username="dash", pinot_password_env="ADAGG_PINOT_PW")
    text = "".join(render(env).values())
    assert "dash:XXXXXXXXXX@" in text and "ADAGG_PINOT_PW" not in text


def test_every_chart_reads_columns_its_table_has_and_time_columns_are_epoch_millis():
    env = load("local")
    files = {path: yaml.safe_load(text) for path, text in render(env).items()}
    datasets = {d["uuid"]: d for p, d in files.items() if p.startswith("datasets/")}
    pinot = {t.name: schema_columns(t.schema) for t in tables(env)}
    for dataset in datasets.values():
        assert {c["column_name"] for c in dataset["columns"]} == set(pinot[dataset["table_name"]])
        temporal = {c["column_name"] for c in dataset["columns"] if c["is_dttm"]}
        assert dataset["main_dttm_col"] in temporal
        assert all(c["python_date_format"] == "epoch_ms" for c in dataset["columns"] if c["is_dttm"])
    charts = [c for p, c in files.items() if p.startswith("charts/")]
    assert len(charts) == 17
    for chart in charts:
        dataset = datasets[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        context = json.loads(chart["query_context"])
        [query] = context["queries"]
        named = [c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]]
        sql = " ".join(m["sqlExpression"] for m in query["metrics"]) + " " + query["extras"]["where"]
        words = set(re.findall(r"[a-z_]+", sql)) - {"sum", "count", "max", "now"}
        assert set(named) <= columns and words <= columns, chart["slice_name"]
        assert context["form_data"] == chart["params"] and chart["viz_type"] == chart["params"]["viz_type"]


def test_dashboards_place_each_of_their_charts_and_filter_on_real_columns():
    env = load("local")
    files = {path: yaml.safe_load(text) for path, text in render(env).items()}
    charts = {c["uuid"]: c for p, c in files.items() if p.startswith("charts/")}
    datasets = {d["uuid"]: {c["column_name"] for c in d["columns"]} for p, d in files.items() if p.startswith("datasets/")}
    placed = []
    for path, dashboard in files.items():
        if not path.startswith("dashboards/"):
            continue
        cells = [v for v in dashboard["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"]
        assert all(c["meta"]["chartId"] and c["meta"]["uuid"] in charts for c in cells)
        placed += [c["meta"]["uuid"] for c in cells]
        for f in dashboard["metadata"]["native_filter_configuration"]:
            [target] = f["targets"]
            assert target["column"]["name"] in datasets[target["datasetUuid"]]
    assert sorted(placed) == sorted(charts)  # every chart on exactly one dashboard
    with zipfile.ZipFile(io.BytesIO(zipped(render(env)))) as z:
        assert all(n.startswith(f"{ROOT}/") for n in z.namelist()) and f"{ROOT}/metadata.yaml" in z.namelist()
