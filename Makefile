# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make test runs the suite twice: on PostgreSQL with Redis, then on the zero-server defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/realqa
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: venv browser demo test test-postgres test-sqlite check bench-import bench-raters clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

demo: venv
	$(PY) manage.py demo

test: test-postgres test-sqlite

# Browser tests drive Debian's Chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test-postgres: venv browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

test-sqlite: venv browser
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL REALQA_VAR_DIR=$(CURDIR)/var/test-sqlite \
		$(PY) -m pytest -m "not postgres and not redis" $(PYTEST_ARGS)

check: venv
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=annotation_site.settings.production SECRET_KEY=check-only-$$(head -c 32 /dev/urandom | base64) \
		ALLOWED_HOSTS=example.org $(PY) manage.py check --deploy --fail-level WARNING

bench-import: venv
	$(PY) -m benchmarks.import_speed --workdir var/bench-import

# Starts Label Studio from ../shared/anchors/labelstudio (installed once) and loads both in one run.
bench-raters: venv
	$(PY) -m benchmarks.rater_load --raters 20 --seconds 30 --anchor

clean:
	rm -rf var/test-sqlite .pytest_cache
