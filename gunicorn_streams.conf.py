"""gunicorn settings for the stream service: `gunicorn -c gunicorn_streams.conf.py api.wsgi:app`.

The same app as the API, serving its live streams (GET /executions/{id}/events,
/executions/stream). A stream is a request that stays open for minutes while
idle, which a sync worker cannot afford (it would hold the worker, and its
timeout would kill it). gthread workers hold one thread per open stream; the
worker's heartbeat to the arbiter runs on its main loop, so an idle stream is
never taken for a hung worker. Capacity: STREAM_WORKERS x STREAM_THREADS
streams per host (default 2 x 300). The API (sync workers) answers the stream
routes with a 307 to STREAM_REDIRECT_URL, this service; behind a proxy, route
those two paths here instead (and turn off response buffering; the stream sends
`X-Accel-Buffering: no` for nginx).
"""

import os

# The metric files per run and per worker (shared with the other gunicorn host).
from monitoring.gunicorn_hooks import child_exit, on_starting  # noqa: F401

# This host holds the streams (whatever the API's settings in the same environment).
os.environ["SERVE_STREAMS"] = "true"
bind = os.environ.get("STREAM_BIND", f"127.0.0.1:{os.environ.get('STREAM_PORT', '8081')}")
workers = int(os.environ.get("STREAM_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("STREAM_THREADS", "300"))
# No more connections than threads: an accepted connection beyond them would wait
# for a thread that an endless stream never gives back, while another worker has
# room. So no keep-alive either (a stream is one long request anyway).
worker_connections = threads
# Every thread may hold a Redis connection at once (authentication, rate limit,
# stream slot) when many streams open together; the workers inherit this.
os.environ.setdefault("REDIS_MAX_CONNECTIONS", str(threads + 20))
timeout = 30
# Open streams are cut at shutdown after this; clients resume with Last-Event-ID.
graceful_timeout = 5
keepalive = 0
# A recycled worker drops its streams (they resume), so recycle never by count.
max_requests = 0
preload_app = False
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
