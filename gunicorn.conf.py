"""gunicorn settings for the API: `gunicorn -c gunicorn.conf.py api.wsgi:app`.

The app is not preloaded: each worker builds its own SQLAlchemy engine and
Redis pool after the fork, so no connection is ever shared across processes.
"""

import os

# The metric files per run and per worker (shared with the other gunicorn host).
from monitoring.gunicorn_hooks import child_exit, on_starting  # noqa: F401

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('API_PORT', '8080')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A live stream stays open for minutes: sync workers must not hold one (the API
# then redirects them to the stream service, gunicorn_streams.conf.py, or refuses).
os.environ.setdefault("SERVE_STREAMS", "false" if worker_class == "sync" else "true")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycling bounds memory growth; the metrics directory stays bounded because
# dead workers' files are merged into an archive (child_exit, monitoring.gunicorn_hooks).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
preload_app = False
accesslog = None  # the app writes one structured JSON line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
limit_request_line = 8190
# gunicorn answers a header field above its limit itself, with an HTML 431. Its limit
# is raised above the app's (api.inputs.MAX_HEADER_BYTES, 8 KiB), so a long header
# (an over-long Authorization) reaches the app and gets the JSON error shape; only
# one above this limit still gets gunicorn's page.
limit_request_field_size = 32768
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
