"""Dashboards in a real browser: headless Chromium (Debian's chromium and chromium-driver) logs in
to Superset, renders each dashboard, waits for its charts and takes a screenshot, and reports any
error shown on it. Used by the e2e test and by `adagg superset screenshots` for docs/dashboards.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
# What Superset shows for a failed chart or dashboard.
_ERRORS = "[data-test='error-message'], .alert-danger, [role='alert'].ant-alert-error, [data-test='alert-danger']"


@dataclass
class Rendered:
    slug: str
    screenshot: Path
    charts: int          # chart containers on the page
    errors: list[str]    # texts of the error alerts shown (none, when it renders)


def browser_missing() -> str | None:
    """Why no browser can run here, or None."""
    for path in (CHROMIUM, DRIVER):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def install_browser(say=print) -> str | None:
    """Debian's chromium and chromium-driver, installed when absent and apt-get may be used
    (root). Returns why not, or None."""
    if browser_missing() is None:
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return browser_missing()
    say("Installing chromium and chromium-driver (Debian packages) for the dashboard screenshots ...")
    apt_env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    install = ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]
    done = subprocess.run(install, capture_output=True, text=True, env=apt_env)
    if done.returncode:  # stale package lists: refresh once
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=apt_env)
        done = subprocess.run(install, capture_output=True, text=True, env=apt_env)
    return None if done.returncode == 0 else f"apt-get install chromium chromium-driver failed: {done.stderr[-300:]}"


def _session_cookie(base: str, user: str, password: str) -> str:
    """Log in through Superset's own login form; its session cookie."""
    http = requests.Session()
    page = http.get(f"{base}/login/", timeout=60).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'csrf_token["\']?\s*[:=]\s*["\']([^"\']+)', page)
    done = http.post(f"{base}/login/", data={"username": user, "password": password,
                                             "csrf_token": token.group(1) if token else ""},
                     allow_redirects=False, timeout=60)
    if done.status_code not in (200, 302) or "session" not in http.cookies:
        raise RuntimeError(f"login to {base} as {user} failed ({done.status_code})")
    return http.cookies["session"]


def render_dashboards(base: str, user: str, password: str, slugs: list[str], out: Path,
                      timeout_s: float = 90) -> list[Rendered]:
    """Open each dashboard, wait until every chart has drawn (no spinner left), screenshot it
    to out/<slug>.png, and collect the error alerts on it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1400",
                "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    out.mkdir(parents=True, exist_ok=True)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(f"{base}/health")
        driver.add_cookie({"name": "session", "value": _session_cookie(base, user, password), "path": "/"})
        rendered = []
        for slug in slugs:
            driver.get(f"{base}/superset/dashboard/{slug}/?standalone=1")
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                charts = driver.find_elements(By.CSS_SELECTOR, "[data-test='chart-container'], .chart-container")
                loading = driver.find_elements(By.CSS_SELECTOR, "[data-test='loading-indicator'], .loading")
                if charts and not loading:
                    break
                time.sleep(1)
            height = driver.execute_script(  # the bottom of the lowest chart: the whole dashboard in one picture
                "return Math.max(...Array.from(document.querySelectorAll('.chart-container, "
                "[data-test=chart-container]')).map(e => e.getBoundingClientRect().bottom + window.scrollY), 0)")
            driver.set_window_size(1600, max(900, min(int(height) + 200, 4000)))
            time.sleep(2)  # the charts' own draw animations
            path = out / f"{slug}.png"
            driver.save_screenshot(str(path))
            errors = [e.text.strip() or e.get_attribute("outerHTML")[:200]
                      for e in driver.find_elements(By.CSS_SELECTOR, _ERRORS)]
            rendered.append(Rendered(slug, path, len(charts), errors))
        return rendered
    finally:
        driver.quit()
