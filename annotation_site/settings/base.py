"""Settings shared by every environment; everything that differs between machines comes from the
environment (see README "Environment variables")."""

from __future__ import annotations

import json
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("REALQA_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or env_str("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-never-used-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation_site.core",
    "annotation_site.projects",
    "annotation_site.schemas",
    "annotation_site.images",
    "annotation_site.raters",
    "annotation_site.labeling",
    "annotation_site.predictions",
    "annotation_site.jobs",
    "annotation_site.quality",
    "annotation_site.releases",
    "annotation_site.grounding",
    "annotation_site.comparisons",
    "annotation_site.demo",
    # The bridge to the model; a string here, never an import from annotation_site (see workers/apps.py).
    "workers",
]

MIDDLEWARE = [
    # First: every response, even a refusal, carries its request id and is timed.
    "annotation_site.core.middleware.RequestIdMiddleware",
    "annotation_site.core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "annotation_site.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Pages show text no UTF-8 can carry (from rows an older version stored) as escapes, not a 500.
    "annotation_site.core.middleware.UnencodableTextMiddleware",
    # Last: a lost database connection in a view becomes 503 + Retry-After, not 500.
    "annotation_site.core.outage.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "annotation_site.urls"
WSGI_APPLICATION = "annotation_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "annotation_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL, or an SQLite file under var/ so a bare laptop needs no server.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes; the timeout rides out
    # short write locks instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_SERVER_SIDE_BINDING", True):
    # Server-side parameters let psycopg prepare the statements a worker repeats on every label.
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker: Redis when REDIS_URL is set, otherwise nothing that needs a server.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Fail-safe: while Redis is down the cache is empty and stores nothing, instead of raising in requests.
    CACHES = {"default": {"BACKEND": "annotation_site.core.cache.FailSafeRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = (
    env_str("CELERY_RESULT_BACKEND") or REDIS_URL or f"file://{CELERY_QUEUE_DIR / 'results'}"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed", "results", "control"):
        (CELERY_QUEUE_DIR / _folder).mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport: a folder of message files that any process on this machine
    # shares, so the demo runs a real worker without Redis or RabbitMQ.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),  # else kombu writes ./control in the cwd
        "store_processed": False,
    }
else:
    # A message whose worker died unacknowledged goes back to its queue after visibility_timeout; kombu looks
    # for such messages every interval x throttle seconds (100 s by default), here at most every 10 s.
    _visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        "unacked_restore_interval": max(1, min(10, _visibility_timeout // 3)),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queues: "cpu" takes every task; tasks named "model.*" go to MODEL_QUEUE when set (e.g. "gpu", consumed
# by workers on GPU machines: `celery -A workers worker -Q gpu`). See docs/deployment.md.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE") or "cpu"
CELERY_TASK_ROUTES = {"model.*": {"queue": env_str("MODEL_QUEUE")}} if env_str("MODEL_QUEUE") else {}
# The multimodal LLM's tasks ("gpu.*") only run where MLLM_CHECKPOINT is set, on machines reading GPU_QUEUE.
CELERY_TASK_ROUTES["gpu.*"] = {"queue": env_str("GPU_QUEUE") or "gpu"}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Run with `celery -A workers beat` (one per deployment) or a worker started with -B.
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {"task": "labeling.expire_leases", "schedule": 60.0},
    # Tasks the web could not send while the broker was away (annotation_site/core/tasks.py).
    "send-pending-tasks": {"task": "core.send_pending_tasks", "schedule": env_int("PENDING_TASKS_SECONDS", 30)},
    # Pre-scores what no message asked for (a broker outage), retrains when enough labels arrived, reorders.
    "model-sweep": {"task": "model.sweep", "schedule": env_int("MODEL_SWEEP_SECONDS", 120)},
}
# Trained checkpoints are kept in the default storage (shared by every machine) and cached here per worker.
MODEL_CACHE_DIR = Path(env_str("MODEL_CACHE_DIR") or VAR_DIR / "model-cache")
# Overrides of realqa_model.cpu_scorer.CpuScorerConfig for the project models, e.g. {"ensemble_size": 8}.
MODEL_TRAINING: dict = json.loads(env_str("MODEL_TRAINING") or "{}")
# A local Qwen2-VL checkpoint (never downloaded) that pre-scores every image beside the CPU model, and its
# realqa_model.mllm_scorer.MllmScorerConfig overrides, e.g. {"mode": "cot", "device": "cuda"}.
MLLM_CHECKPOINT = env_str("MLLM_CHECKPOINT")
MLLM_SETTINGS: dict = json.loads(env_str("MLLM_SETTINGS") or "{}")
# The staff dashboard computes a project's statistics in the request up to this many usable labels (~0.3 s at
# 5,000), above it in a worker ("releases.dashboard_stats"); see annotation_site/releases/dashboard.py.
DASHBOARD_INLINE_MAX_LABELS = env_int("DASHBOARD_INLINE_MAX_LABELS", 5000)

# --- Files: a local folder, or any S3-compatible store when AWS_STORAGE_BUCKET_NAME is set.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = env_str("MEDIA_URL") or "/media/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
STATIC_URL = "/static/"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request until collectstatic made it
if env_str("AWS_STORAGE_BUCKET_NAME"):
    _media = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "default_acl": None,
            "querystring_auth": True,
            # A signed photo URL works for whoever holds it: keep that short (docs/deployment.md).
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 300),
            "file_overwrite": False,
        },
    }
else:
    _media = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# Media go through an access check (annotation_site/images/views.py); with this set (production: the sample
# nginx's internal location), the proxy sends the bytes after it, else Django streams them.
MEDIA_X_ACCEL_REDIRECT = env_str("MEDIA_X_ACCEL_REDIRECT") or ""
STORAGES = {
    "default": _media,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Uploads: the admin's multi-file upload; each file's own limit is checked on decode.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 500)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Sent on every response (core/middleware.py); empty turns it off. script-src 'self': every page's scripts
# are files of this site (no inline code, no CDN; the API docs from drf-spectacular-sidecar).
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'; script-src 'self'",
)
# Largest multipart request (an upload of photos or a zip); bigger ones get 413 before a byte is read.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024 * 1024)
# Uploads go to temporary files, never memory: the import reads them like files on disk.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]

# --- Image ingestion
IMAGES_MAX_BYTES = env_int("IMAGES_MAX_BYTES", 80 * 1024 * 1024)
IMAGES_MAX_PIXELS = env_int("IMAGES_MAX_PIXELS", 120_000_000)
IMAGES_NEAR_DUPLICATE_DISTANCE = env_int("IMAGES_NEAR_DUPLICATE_DISTANCE", 8)
IMAGES_THUMBNAIL_SIZE = env_int("IMAGES_THUMBNAIL_SIZE", 320)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Login throttling (annotation_site/core/throttle.py): failures per user name and address, per user name
# from any address and per address for any user name, each with its limit (0 turns one off), then a lockout.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 10)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 15)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
# How many proxies in front of gunicorn append to X-Forwarded-For (docs/deployment.md, "The caller's
# address"): 0, REMOTE_ADDR only; 1, the sample nginx; 2, a load balancer in front of it. The older
# LOGIN_TRUST_X_FORWARDED_FOR=1 means 1. Production defaults to 1.
LOGIN_TRUSTED_PROXIES = env_int("LOGIN_TRUSTED_PROXIES", 1 if env_bool("LOGIN_TRUST_X_FORWARDED_FOR", False) else 0)
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation_site.core.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "annotation_site.core.parsers.SafeJSONParser",
        # Forms get the JSON parser's checks too (NUL, half surrogates); their JSON fields use SafeJSONField.
        "annotation_site.core.parsers.SafeFormParser",
        "annotation_site.core.parsers.SafeMultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RealQA annotation platform API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API's description is for the platform's own users, not for anonymous visitors.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from our static files (drf-spectacular-sidecar, pinned in requirements.txt), not a CDN's
    # "latest"; the page's start-up script is a file too (SpectacularSwaggerSplitView), so script-src 'self' holds.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# JSON lines (one object per line with request_id / task_id) unless LOG_FORMAT=plain; plain in debug.
LOG_FORMAT = env_str("LOG_FORMAT") or ("plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "annotation_site.core.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"},
        "json": {"()": "annotation_site.core.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per request (about 50 us each); LOG_REQUESTS=0 leaves them to the proxy's access log.
        "realqa.request": {"level": "INFO" if env_bool("LOG_REQUESTS", True) else "WARNING"},
    },
}
REALQA_SCHEMA_PATH = BASE_DIR / "fixtures" / "realqa_schema.json"
