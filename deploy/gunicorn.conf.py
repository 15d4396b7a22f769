"""gunicorn on a web machine, behind the reverse proxy (deploy/nginx.conf):

    gunicorn -c deploy/gunicorn.conf.py

Every value can be changed through the environment, so one file serves every machine. The fault tests
(tests/faults/) start the web server with this very file."""

import multiprocessing
import os

wsgi_app = "annotation_site.wsgi:application"
# Loopback: only the nginx on this machine reaches gunicorn. A caller who reached it directly would write
# their own X-Forwarded-For, the address login throttling counts (docs/deployment.md, "The caller's address").
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers, cores + 1: the rater loop is short and CPU-bound (see BENCHMARKS.md); 3 did best on 2 cores.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Load the app once before forking: no rater meets a cold worker, and workers share its memory.
preload_app = True
# A request that runs longer than this is killed with its worker; the rater's client retries the submit
# with its idempotency key, and the label is stored once either way.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# The proxy keeps connections to us open between requests.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so slow leaks cannot grow for weeks; jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
# Trust X-Forwarded-* only from the proxy.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Django logs every request itself (JSON lines with request ids); gunicorn adds only its own errors.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
