"""Superset's configuration for the local stack (SUPERSET_CONFIG_PATH points here; adagg/superset.py
starts it). Metadata in SQLite, in-process caches, no Redis or Celery: one server process on
127.0.0.1. The secret key and the metadata folder come from the environment adagg sets, never from
this file."""

import os

DATA_DIR = os.environ["ADAGG_SUPERSET_HOME"]
SECRET_KEY = os.environ["ADAGG_SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.path.join(DATA_DIR, 'superset.db')}?check_same_thread=false"

CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 30}  # dashboards stay near-live
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 3600}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 3600}
RATELIMIT_STORAGE_URI = "memory://"

FEATURE_FLAGS = {"DASHBOARD_NATIVE_FILTERS": True}
SUPERSET_WEBSERVER_TIMEOUT = 120
