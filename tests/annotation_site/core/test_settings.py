from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

REPO = Path(__file__).resolve().parents[3]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # DJANGO_ALLOW_ASYNC_UNSAFE is the browser tests' own (see tests/browser/conftest.py), never a deployment's.
    inherited = {"SECRET_KEY", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True
    )


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    result = _manage("check", DJANGO_SETTINGS_MODULE="annotation_site.settings.production", ALLOWED_HOSTS="example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_the_deployment_checklist() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="annotation_site.settings.production",
        SECRET_KEY="a-long-random-production-secret-" + "x7Qp2" * 10,
        ALLOWED_HOSTS="labels.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_bad_boolean_in_the_environment_is_named_in_the_error() -> None:
    result = _manage("check", DJANGO_SETTINGS_MODULE="annotation_site.settings.dev", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.django_db
def test_migrations_are_in_step_with_the_models() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_suite_runs_on_postgresql_when_database_url_names_it() -> None:
    assert connection.vendor == "postgresql"


@pytest.mark.redis
def test_the_cache_lives_in_redis_when_redis_url_is_set() -> None:
    import redis
    from django.conf import settings

    cache.set("realqa-settings-probe", "here", 30)
    raw = redis.Redis.from_url(settings.REDIS_URL)
    assert any(b"realqa-settings-probe" in key for key in raw.keys("*realqa-settings-probe*"))
    cache.delete("realqa-settings-probe")


def test_without_any_server_configured_the_defaults_need_none() -> None:
    script = (
        "from django.conf import settings\n"
        "print(settings.DATABASES['default']['ENGINE'])\n"
        "print(settings.CELERY_BROKER_URL)\n"
        "print(settings.CACHES['default']['BACKEND'])\n"
        "from pathlib import Path\n"
        "options = settings.CELERY_BROKER_TRANSPORT_OPTIONS\n"
        "print(all(Path(options[k]).is_relative_to(settings.VAR_DIR) for k in options if k.endswith('_folder')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["DJANGO_SETTINGS_MODULE"] = "annotation_site.settings.dev"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",  # every folder of the embedded broker lives under var/, none in the working directory
    ]


def test_media_go_to_an_s3_compatible_store_when_a_bucket_is_configured() -> None:
    script = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "media = storages['default']\n"
        "print(type(media).__name__, media.bucket_name, media.endpoint_url)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings.dev",
        "AWS_STORAGE_BUCKET_NAME": "realqa-media",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "realqa-media", "http://127.0.0.1:9000"]
