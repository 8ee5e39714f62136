"""User-Agent -> (device_type, os, browser), and whether the agent is a bot.

ua-parser (https://github.com/ua-parser/uap-python, regexes from uap-core) gives the os, browser
and device families. device_type is ours:

    bot      ua-parser device family 'Spider', or the agent contains (case-insensitively) one of
             the substrings in udfs/data/bot_agents.txt (crawlers, HTTP libraries, headless
             browsers); a NULL/empty agent is also counted as a bot for invalid traffic
    tablet   iPad, or Android without the 'Mobile' token
    mobile   other iOS / Android (and Windows Phone)
    desktop  Windows, Mac OS X, Linux (and the Linux distributions ua-parser names), Chrome OS
    other    anything else, including a NULL/empty agent

os and browser are ua-parser's os and user-agent families, 'Other' when it has none.
Results are cached per agent string (functools.lru_cache), since agents repeat a lot.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from ua_parser import parse as _ua_parse

from udfs._tables import DATA_DIR, TableError, data_lines

BOT_AGENTS_FILE = DATA_DIR / "bot_agents.txt"
CACHE_SIZE = 10_000

BOT, TABLET, MOBILE, DESKTOP, OTHER_DEVICE = "bot", "tablet", "mobile", "desktop", "other"
OTHER = "Other"  # ua-parser's own "unknown" family

MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone"})
DESKTOP_OS = frozenset({
    "Windows", "Mac OS X", "Linux", "Chrome OS",
    # Linux distributions that ua-parser reports under their own name.
    "Ubuntu", "Kubuntu", "Fedora", "Debian", "Linux Mint", "Arch Linux", "openSUSE", "Red Hat",
    "CentOS", "Gentoo", "Slackware", "Mandriva",
})
_MOBILE_TOKEN = re.compile(r"\bMobile\b")


class UserAgent(NamedTuple):
    device_type: str
    os: str
    browser: str


EMPTY = UserAgent(OTHER_DEVICE, OTHER, OTHER)


@functools.cache
def bot_substrings() -> tuple[str, ...]:
    """The lower-cased substrings of udfs/data/bot_agents.txt (one per line, '#' comments)."""
    subs = tuple(line.lower() for _, line in data_lines(BOT_AGENTS_FILE))
    if not subs:
        raise TableError(f"{BOT_AGENTS_FILE}: no bot substrings")
    return subs


def _blank(ua: str | None) -> bool:
    return not ua or ua.isspace()


def _listed_bot(ua: str) -> bool:
    lowered = ua.lower()
    return any(sub in lowered for sub in bot_substrings())


@functools.lru_cache(maxsize=CACHE_SIZE)
def parse(ua: str | None) -> UserAgent:
    """(device_type, os, browser) of a User-Agent; NULL/empty gives ('other', 'Other', 'Other')."""
    if _blank(ua):
        return EMPTY
    result = _ua_parse(ua).with_defaults()
    os_family = result.os.family or OTHER
    browser = result.user_agent.family or OTHER
    device_family = result.device.family
    if device_family == "Spider" or _listed_bot(ua):
        device = BOT
    elif device_family == "iPad" or (os_family == "iOS" and "iPad" in ua):
        device = TABLET
    elif os_family == "Android" and not _MOBILE_TOKEN.search(ua):
        device = TABLET
    elif os_family in MOBILE_OS:
        device = MOBILE
    elif os_family in DESKTOP_OS:
        device = DESKTOP
    else:
        device = OTHER_DEVICE
    return UserAgent(device, os_family, browser)


def is_bot(ua: str | None) -> bool:
    """A bot agent; NULL/empty agents count as bots (no real browser sends none)."""
    return _blank(ua) or parse(ua).device_type == BOT


def device_type(ua: str | None) -> str:
    return parse(ua).device_type


def os_family(ua: str | None) -> str:
    return parse(ua).os


def browser(ua: str | None) -> str:
    return parse(ua).browser
