"""PyFlink wrappers of the enrichment functions: one scalar UDF per SQL function, STRING results
(enrich_event's is the six values packed: udfs.enrichment.pack; its one argument is packed too).

Register them from SQL (the module must be importable by the client and by the TaskManagers):

    CREATE TEMPORARY SYSTEM FUNCTION ua_device_type AS 'udfs.flink.ua_device_type' LANGUAGE PYTHON;
    CREATE TEMPORARY SYSTEM FUNCTION ua_os AS 'udfs.flink.ua_os' LANGUAGE PYTHON;
    CREATE TEMPORARY SYSTEM FUNCTION ua_browser AS 'udfs.flink.ua_browser' LANGUAGE PYTHON;
    CREATE TEMPORARY SYSTEM FUNCTION ip_country AS 'udfs.flink.ip_country' LANGUAGE PYTHON;
    CREATE TEMPORARY SYSTEM FUNCTION campaign_vertical AS 'udfs.flink.campaign_vertical' LANGUAGE PYTHON;
    CREATE TEMPORARY SYSTEM FUNCTION invalid_traffic_reason AS 'udfs.flink.invalid_traffic_reason' LANGUAGE PYTHON;

All are deterministic and NULL-safe; the logic lives in the pure modules (udfs.user_agent, geo,
dimensions, invalid_traffic). Importing this module needs PyFlink but no JVM.

Data tables: a job may name its own files with global job parameters (JOB_PARAMETERS below, e.g.
SET 'pipeline.global-job-parameters' = 'adagg.ip-country-table:/srv/geo.csv'), read in open().
Without one, the pure modules' default applies: the environment variable (ADAGG_IP_COUNTRY_TABLE,
ADAGG_IP_BLOCKLIST, ADAGG_CAMPAIGN_TABLE), else the shipped sample in udfs/data/. Every table is
loaded once per process and path. Works in thread and process mode (docs/enrichment.md).
"""

from __future__ import annotations

from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from udfs import dimensions, enrichment, geo, invalid_traffic, user_agent

__all__ = ["enrich_event", "ua_device_type", "ua_os", "ua_browser", "ip_country", "campaign_vertical",
           "invalid_traffic_reason"]

# Global job parameter -> the table it names (over the environment variable and the default).
IP_COUNTRY_TABLE = "adagg.ip-country-table"
IP_BLOCKLIST = "adagg.ip-blocklist"
CAMPAIGN_TABLE = "adagg.campaign-table"
JOB_PARAMETERS = {IP_COUNTRY_TABLE: geo.ENV_VAR, IP_BLOCKLIST: invalid_traffic.ENV_VAR,
                  CAMPAIGN_TABLE: dimensions.ENV_VAR}


def _job_parameter(context: FunctionContext | None, key: str) -> str | None:
    value = context.get_job_parameter(key, "") if context is not None else ""
    return value.strip() or None


class UaDeviceType(ScalarFunction):
    """'desktop' | 'mobile' | 'tablet' | 'bot' | 'other'."""

    def eval(self, ua: str | None) -> str:
        return user_agent.parse(ua).device_type


class UaOs(ScalarFunction):
    """ua-parser os family, 'Other' when unknown."""

    def eval(self, ua: str | None) -> str:
        return user_agent.parse(ua).os


class UaBrowser(ScalarFunction):
    """ua-parser user-agent family, 'Other' when unknown."""

    def eval(self, ua: str | None) -> str:
        return user_agent.parse(ua).browser


class IpCountry(ScalarFunction):
    """ISO country code of an IPv4 address; 'ZZ' when unknown, unparsable, IPv6 or NULL."""

    def __init__(self):
        self._table: geo.IpRangeTable | None = None

    def open(self, function_context: FunctionContext | None) -> None:
        self._table = geo.TABLE.get(_job_parameter(function_context, IP_COUNTRY_TABLE))

    def eval(self, ip: str | None) -> str:
        return geo.country(ip, self._table)


class CampaignVertical(ScalarFunction):
    """The campaign's vertical; 'unknown' when NULL or not in the campaign table."""

    def __init__(self):
        self._table: dict[str, dimensions.Campaign] | None = None

    def open(self, function_context: FunctionContext | None) -> None:
        self._table = dimensions.TABLE.get(_job_parameter(function_context, CAMPAIGN_TABLE))

    def eval(self, campaign_id: str | None) -> str:
        return dimensions.vertical(campaign_id, self._table)


class InvalidTrafficReason(ScalarFunction):
    """'bot_user_agent' | 'blocked_ip' | NULL (valid); a bot takes precedence."""

    def __init__(self):
        self._blocklist: invalid_traffic.Blocklist | None = None

    def open(self, function_context: FunctionContext | None) -> None:
        self._blocklist = invalid_traffic.BLOCKLIST.get(_job_parameter(function_context, IP_BLOCKLIST))

    def eval(self, ua: str | None, ip: str | None) -> str | None:
        return invalid_traffic.reason(ua, ip, self._blocklist)


class EnrichEvent(ScalarFunction):
    """device_type, os, browser, country, vertical, invalid_reason in one call, packed in one STRING,
    from one STRING: ip, campaign_id and user_agent as macros/columns.sql enrichment_input() joins
    them (udfs.enrichment.unpack_input)."""

    def __init__(self):
        self._enricher: enrichment.Enricher | None = None

    def open(self, function_context: FunctionContext | None) -> None:
        self._enricher = enrichment.Enricher(
            geo.TABLE.get(_job_parameter(function_context, IP_COUNTRY_TABLE)),
            invalid_traffic.BLOCKLIST.get(_job_parameter(function_context, IP_BLOCKLIST)),
            dimensions.TABLE.get(_job_parameter(function_context, CAMPAIGN_TABLE)))

    def eval(self, event: str | None) -> str:
        return self._enricher.packed(*enrichment.unpack_input(event))


def _wrap(function: ScalarFunction, name: str):
    return udf(function, result_type=DataTypes.STRING(), deterministic=True, name=name)


ua_device_type = _wrap(UaDeviceType(), "ua_device_type")
ua_os = _wrap(UaOs(), "ua_os")
ua_browser = _wrap(UaBrowser(), "ua_browser")
ip_country = _wrap(IpCountry(), "ip_country")
campaign_vertical = _wrap(CampaignVertical(), "campaign_vertical")
invalid_traffic_reason = _wrap(InvalidTrafficReason(), "invalid_traffic_reason")
enrich_event = _wrap(EnrichEvent(), "enrich_event")
