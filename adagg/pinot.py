"""Pinot: render table configs for an environment, apply them idempotently, and query the broker."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jinja2
import requests

from adagg.paths import PINOT_DIR
from adagg.sql import output_topic


class PinotError(RuntimeError):
    pass


@dataclass
class TableSpec:
    name: str
    schema: dict
    table_config: dict


def schema_columns(schema: dict) -> dict[str, str]:
    """A Pinot schema's columns: name -> dataType, dimensions, metrics and time columns alike."""
    return {f["name"]: f["dataType"] for kind in ("dimensionFieldSpecs", "metricFieldSpecs", "dateTimeFieldSpecs")
            for f in schema.get(kind, [])}


def tables(env) -> list[TableSpec]:
    """Every pinot/<table>/ folder: <table>_schema.json plus <table>_table_config.json.j2 rendered for env."""
    specs = []
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(PINOT_DIR), undefined=jinja2.StrictUndefined)
    for folder in sorted(p for p in PINOT_DIR.iterdir() if p.is_dir()):
        name = folder.name
        schema = json.loads((folder / f"{name}_schema.json").read_text())
        rendered = templates.get_template(f"{name}/{name}_table_config.json.j2").render(
            env=env, output_topic=lambda suffix: output_topic(env, suffix))
        try:
            config = json.loads(rendered)
        except json.JSONDecodeError as error:
            raise PinotError(f"pinot/{name}: the rendered table config is not JSON ({error})") from None
        specs.append(TableSpec(name, schema, config))
    return specs


def _error(resp: requests.Response) -> str:
    try:
        body = resp.json()
        return body.get("error") or body.get("_message") or json.dumps(body)
    except ValueError:
        return resp.text[:500]


def _plan(ctl: str, spec: TableSpec) -> list[tuple[str, str, str, dict]]:
    """(verb, kind, url, body) for each change this spec needs; empty when Pinot already matches."""
    steps = []
    current = requests.get(f"{ctl}/schemas/{spec.name}", timeout=10)
    if current.status_code == 404:
        steps.append(("create", "schema", f"{ctl}/schemas", spec.schema))
    elif current.json() != spec.schema:
        # reload: the table's segments take the new columns at once. Without it a segment lacks
        # them until it is rebuilt, and Pinot prunes every segment lacking a queried column: a
        # query of a new column (the freshness gauge's max_received_at_ms, say) answers no rows.
        steps.append(("update", "schema", f"{ctl}/schemas/{spec.name}?reload=true", spec.schema))
    current = requests.get(f"{ctl}/tables/{spec.name}", params={"type": "realtime"}, timeout=10)
    existing = current.json().get("REALTIME") if current.ok else None
    if not existing:
        steps.append(("create", "table", f"{ctl}/tables", spec.table_config))
    elif _differs({**existing, "tableName": spec.name}, spec.table_config):  # Pinot adds the type suffix
        steps.append(("update", "table", f"{ctl}/tables/{spec.name}", spec.table_config))
    return steps


def apply(env, dry_run: bool = False, say=print, specs: list[TableSpec] | None = None) -> list[str]:
    """Create or update every schema and table (or just `specs`); returns the actions taken (or planned)."""
    ctl = env.pinot.controller_url.rstrip("/")
    actions = []
    for spec in specs if specs is not None else tables(env):
        for verb, kind, url, body in _plan(ctl, spec):
            action = f"{verb} {kind} {spec.name}"
            actions.append(action)
            if dry_run:
                say(f"  would {action}")
                continue
            resp = (requests.post if verb == "create" else requests.put)(url, json=body, timeout=30)
            if not resp.ok:
                raise PinotError(f"Pinot refused to {action}: {_error(resp)}")
            say(f"  {action}: ok")
    if not actions:
        say("  Pinot schemas and tables are up to date")
    return actions


def _differs(existing: dict, wanted: dict) -> bool:
    """True when a key we set has another value in Pinot (Pinot adds defaults of its own)."""
    def sub(a, b):
        if isinstance(b, dict):
            return isinstance(a, dict) and all(sub(a.get(k), v) for k, v in b.items())
        return a == b
    return not sub(existing, wanted)


def query(env, sql: str, params: dict | None = None) -> list[dict]:
    """Run SQL on the broker with bound parameters (serving.runner.bind); rows as dicts."""
    from serving.runner import PinotRunner

    runner = PinotRunner(env.pinot.broker_url)
    try:
        return runner(sql, params or {})
    finally:
        runner.close()
