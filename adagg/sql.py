"""Render the Jinja2-templated Flink SQL in sql/ for an environment, and split it into statements."""

from __future__ import annotations

import hashlib
import ipaddress
import re

import jinja2

from adagg import __version__
from adagg.env import Namespace, load
from adagg.keygroups import spread_keys
from adagg.paths import SQL_DIR, env_uri


def jobs() -> list[str]:
    return sorted(p.stem for p in (SQL_DIR / "jobs").glob("*.sql"))


def example_params(job: str) -> dict:
    """Template values that render a job outside a run (golden files, `adagg sql render`): for the
    backfill, one sample hour into a sample folder. Other jobs take none."""
    if job != "backfill":
        return {}
    from archive.manifest import partitions_between

    hour = 1_795_860_000_000  # 2026-11-28T10:00Z
    return {"partitions": partitions_between(hour, hour + 3_600_000), "from_ms": hour, "to_ms": hour + 3_600_000,
            "output_uri": "file:///tmp/adagg-backfill-example"}


def sql_digest(sql_dir=SQL_DIR) -> str:
    """Digest of every SQL template: part of each output row's lineage."""
    h = hashlib.sha256()
    for path in sorted(sql_dir.rglob("*.sql")):
        h.update(path.relative_to(sql_dir).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def pipeline_version(sql_dir=SQL_DIR) -> str:
    return f"{__version__}+sql.{sql_digest(sql_dir)}"


def marts(sql_dir=SQL_DIR) -> list[str]:
    """Names of the marts (sql/views/mart_<name>.sql); each has its sink sql/sinks/snk_<name>.sql."""
    names = sorted(p.stem.removeprefix("mart_") for p in (sql_dir / "views").glob("mart_*.sql"))
    missing = [n for n in names if not (sql_dir / "sinks" / f"snk_{n}.sql").exists()]
    if missing:
        raise ValueError(f"marts without a sink: {', '.join(f'sql/sinks/snk_{n}.sql' for n in missing)}")
    return names


def functions(sql_dir=SQL_DIR) -> list[str]:
    return sorted(p.stem for p in (sql_dir / "functions").glob("*.sql"))


# The shaded package of Kafka inside flink-sql-connector-kafka: class names in client
# properties must use it.
_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka"


def kafka_security(env: Namespace) -> dict[str, str]:
    """Kafka client security options for an environment. Secrets are `${env:NAME}` references,
    resolved by the client's EnvVarConfigProvider where it runs (the TaskManager)."""
    kafka = env.kafka
    opts = {"properties.security.protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL_"):
        sasl = kafka.sasl
        opts |= {
            "properties.sasl.mechanism": sasl.mechanism,
            "properties.sasl.jaas.config": (
                f"{_KAFKA}.common.security.{sasl.login_module} required "
                f'username="${{env:{sasl.username_env}}}" password="${{env:{sasl.password_env}}}";'),
            "properties.config.providers": "env",
            "properties.config.providers.env.class": f"{_KAFKA}.common.config.provider.EnvVarConfigProvider",
        }
    if kafka.security_protocol.endswith("SSL") and kafka.get("ssl"):
        opts |= {
            "properties.ssl.truststore.location": kafka.ssl.truststore_location,
            "properties.ssl.truststore.password": f"${{env:{kafka.ssl.truststore_password_env}}}",
        }
    return opts


def output_topic(env: Namespace, name: str) -> Namespace:
    """The topic of an output: the environment's output prefix + the name its sink gives."""
    return Namespace(name=env.outputs.prefix + name, partitions=env.outputs.partitions)


def sql_string(value: str) -> str:
    """A SQL string literal of value: quoted, with its quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def templates(sql_dir=SQL_DIR) -> jinja2.Environment:
    """The Jinja environment of sql/: undefined names are errors, not empty strings."""
    jenv = jinja2.Environment(loader=jinja2.FileSystemLoader(str(sql_dir)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)
    jenv.filters["sql_string"] = sql_string
    return jenv


def like_prefix(network: str) -> str:
    """The LIKE prefix of the dotted addresses of an IPv4 network of whole octets:
    '23.32.' for 23.32.0.0/16. Other prefix lengths cannot be written as one."""
    net = ipaddress.IPv4Network(network)
    if net.prefixlen % 8 or not 8 <= net.prefixlen <= 24:
        raise ValueError(f"network {network}: only /8, /16 and /24 networks have a LIKE prefix")
    return ".".join(str(net.network_address).split(".")[:net.prefixlen // 8]) + "."


def enrichment_lookup() -> dict:
    """enrich_event's values for every user agent, network and campaign the traffic generator
    draws from (adagg.traffic_catalog), computed by the UDF's own code (udfs.enrichment.Enricher,
    with the tables the UDF loads by default). The job rendered without Python UDFs
    (python_udfs=False: the UDF-overhead benchmark's baseline) writes them out as CASE expressions
    (sql/macros/enrichment.sql), so on generated traffic it derives the UDF's values in plain SQL
    and writes the same rows as the job.

    - agents: each catalog agent's device_type, os and browser, and whether it is a bot;
    - countries: the LIKE prefix of each catalog network with a country (not the fallback's);
    - blocked: the LIKE prefixes of the networks the UDF calls blocked_ip;
    - verticals: each vertical with the campaign ids of the shipped table that have it;
    - fallback: the UDF's values for a missing agent, IP and campaign, for anything else;
    - reasons: the UDF's invalid_reason values for a bot agent and a blocked network.

    A network's values are taken at its first and last host, and must be equal (a table range
    boundary inside a catalog network raises ValueError); tests/unit/test_sql.py checks every
    value against the UDF on many hosts and on generated traffic."""
    from adagg import traffic_catalog as cat
    from udfs.enrichment import Enricher, unpack
    from udfs.invalid_traffic import BLOCKED_IP, BOT_USER_AGENT

    enricher = Enricher()

    def values(ua: str | None, ip: str | None, campaign_id: str | None):
        return unpack(enricher.packed(ua, ip, campaign_id))

    human = next(a.user_agent for a in cat.USER_AGENTS if not a.is_bot)
    agents = []
    for agent in cat.USER_AGENTS:
        got = values(agent.user_agent, None, None)
        agents.append({"user_agent": agent.user_agent, "device_type": got.device_type, "os": got.os,
                       "browser": got.browser, "bot": got.invalid_reason == BOT_USER_AGENT})
    fallback = values(None, None, None)
    countries, blocked = [], []
    networks = [*cat.COUNTRY_NETWORKS.values(), cat.UNKNOWN_NETWORK, *cat.BLOCKED_NETWORKS]
    for network in networks:
        net = ipaddress.IPv4Network(network)
        ends = [values(human, str(host), None) for host in (net.network_address + 1, net.broadcast_address - 1)]
        labels = {(e.country, e.invalid_reason) for e in ends}
        if len(labels) != 1:
            raise ValueError(f"network {network}: the UDF gives its hosts different values {sorted(labels)}")
        country, reason = labels.pop()
        if country != fallback.country:
            countries.append({"prefix": like_prefix(network), "country": country})
        if reason == BLOCKED_IP:
            blocked.append(like_prefix(network))
    verticals: dict[str, list[str]] = {}
    for number in range(1, cat.CAMPAIGNS + 1):
        campaign = cat.campaign_id(number)
        vertical = values(human, None, campaign).vertical
        if vertical != fallback.vertical:
            verticals.setdefault(vertical, []).append(campaign)
    return {"agents": agents, "countries": countries, "blocked": blocked,
            "verticals": [{"vertical": v, "campaigns": ids} for v, ids in verticals.items()],
            "fallback": {"device_type": fallback.device_type, "os": fallback.os, "browser": fallback.browser,
                         "country": fallback.country, "vertical": fallback.vertical},
            "reasons": {"bot": BOT_USER_AGENT, "blocked": BLOCKED_IP}}


def render(env: str | Namespace, job: str = "streaming", sql_dir=SQL_DIR, python_udfs: bool = True,
           **params) -> str:
    """Render a job for an environment, given by name or as a loaded (possibly overridden) env.

    python_udfs=False renders the enrichment without the Python UDF: only for the UDF-overhead
    benchmark's baseline. Plain SQL lookups then derive the UDF's values for generated traffic
    (enrichment_lookup, sql/macros/enrichment.sql).
    `params` are the job's own template values (backfill: partitions, from_ms, to_ms, output_uri).
    """
    if job not in jobs():
        raise ValueError(f"unknown job {job!r}; known: {', '.join(jobs())}")
    env = load(env) if isinstance(env, str) else env
    jenv = templates(sql_dir)
    jenv.globals.update(
        kafka_security=lambda: kafka_security(env),
        output_topic=lambda name: output_topic(env, name),
        archive_uri=lambda: env_uri(env.archive.path),
        raw_partition_keys=lambda: spread_keys(env.topics.raw.partitions, env.flink.max_parallelism),
    )
    if not python_udfs:
        params = {"enrichment_lookup": enrichment_lookup(), **params}
    text = jenv.get_template(f"jobs/{job}.sql").render(
        env=env, pipeline_version=pipeline_version(sql_dir), marts=marts(sql_dir), functions=functions(sql_dir),
        python_udfs=python_udfs, **params)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def topics(env: Namespace, job: str = "streaming", sql_dir=SQL_DIR) -> dict[str, int]:
    """Every topic a job reads or writes, with its partition count: what must exist before it runs."""
    named = {t.name: t.partitions for t in env.topics.values()}
    used = re.findall(r"^  'topic' = '([^']+)'", render(env, job, sql_dir=sql_dir), re.M)
    return {name: named.get(name, env.outputs.partitions) for name in dict.fromkeys(used)}


def split_statements(script: str) -> list[str]:
    """Split a rendered script into statements, keeping EXECUTE STATEMENT SET ... END as one.

    Rendered SQL never puts ';' inside string literals except at a line end, so splitting at
    line-ending semicolons is enough; comment lines are dropped.
    """
    statements, current, in_set = [], [], False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.upper().startswith("EXECUTE STATEMENT SET"):
            in_set = True
        if stripped.endswith(";") and (not in_set or stripped.upper() == "END;"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current, in_set = [], False
    if current:
        raise ValueError("script ends inside a statement: " + " ".join(current)[:200])
    return statements
