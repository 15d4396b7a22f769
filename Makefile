# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make test runs the suite twice, side by side: on PostgreSQL with Redis, and on the zero-server defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/realqa
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# The slowest tests are listed at the end of each pass, to keep the suite within its 15 minutes.
PYTEST_ARGS ?= --durations=15

.PHONY: venv browser nginx demo test test-postgres test-sqlite check bench-import bench-prescore bench-active bench-raters bench-soak bench-pairs bench-release clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

demo: venv
	$(PY) manage.py demo

# The two passes share nothing (their own database, broker and var/ folder; free ports) and each keeps about one
# core busy, so they run side by side. On the 2-core machine of 2026-12-06, .ci/run took 20:07 with one pass after
# the other and 15:16 side by side (13:06 once small releases were built in one process). They are started as two
# background jobs, not by make -j2: once, on 2026-12-07, make held the PostgreSQL pass back until the SQLite pass
# had ended (15:01 instead of 8-9 minutes). Each pass writes its own log, printed whole when the pass ends. Jobs
# in the background ignore Ctrl-C, so the trap stops them (their make passes the signal on to pytest). The
# prerequisites are met once, before both start: two apt-get runs at once would fight over the dpkg lock.
test: venv browser nginx
	@echo "make test: the PostgreSQL and the SQLite pass run side by side; each prints its report when it ends"
	@mkdir -p var; \
	$(MAKE) --no-print-directory test-sqlite > var/test-sqlite.log 2>&1 & sqlite=$$!; \
	$(MAKE) --no-print-directory test-postgres > var/test-postgres.log 2>&1 & postgres=$$!; \
	trap 'kill $$sqlite $$postgres 2>/dev/null; exit 130' INT TERM; \
	wait $$sqlite; sqlite_status=$$?; cat var/test-sqlite.log; \
	wait $$postgres; postgres_status=$$?; cat var/test-postgres.log; \
	echo "make test: SQLite pass exit status $$sqlite_status, PostgreSQL pass exit status $$postgres_status"; \
	test $$sqlite_status -eq 0 && test $$postgres_status -eq 0

# Browser tests drive Debian's Chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The scale-out fault test runs the sample deploy/nginx.conf (tests/faults/test_scale_out.py).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }

# Each test runs in the pass where its outcome can differ: tests of pure code that touches no database
# (the model package, the statistics, the benchmarks' arithmetic) run once, in the SQLite pass, which is
# the shorter of the two, and tests that start the zero-server demo themselves (marked zero_server) there too.
PURE_TESTS := tests/realqa_model tests/annotation_site/statistics tests/benchmarks

test-postgres: venv browser nginx
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m "not zero_server" $(addprefix --ignore=,$(PURE_TESTS)) $(PYTEST_ARGS)

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

bench-prescore: venv
	$(PY) -m benchmarks.prescore_speed --workdir var/bench-prescore

# Active queue against random in a simulation with a known truth, then pre-scoring against a plain decode
# of the same 12 MP JPEGs (issue #4). Shorter: make bench-active ACTIVE_ARGS="--seeds 3"
ACTIVE_ARGS ?=
bench-active: venv
	$(PY) -m benchmarks.active_learning --prescore-workdir var/bench-prescore $(ACTIVE_ARGS)

# Starts Label Studio from ../shared/anchors/labelstudio (installed once) and loads both in one run.
bench-raters: venv
	$(PY) -m benchmarks.rater_load --raters 20 --seconds 30 --anchor

# 50 raters for 10 minutes against gunicorn + PostgreSQL (database realqa_soak) + Redis (db 13); every
# acknowledged label looked for in the database. Shorter: make bench-soak SOAK_ARGS="--raters 5 --seconds 60"
SOAK_ARGS ?= --raters 50 --seconds 600
bench-soak: venv
	$(PY) -m benchmarks.soak $(SOAK_ARGS)

# Simulated raters answering five-level comparisons: comparisons active pair selection needs for the SRCC that
# random pairs reach (pure numpy/scipy, no database).
bench-pairs: venv
	$(PY) -m benchmarks.pair_selection

# A RealQA-sized release (14,715 images, 12 fields, 10 labels an image, COPY-seeded into PostgreSQL) against the
# krippendorff package's time for the two overall scores' alphas. Its own database, created if missing.
BENCH_RELEASE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/realqa_bench_release
bench-release: venv
	DATABASE_URL=$(BENCH_RELEASE_DATABASE_URL) $(PY) -m benchmarks.release_speed $(RELEASE_ARGS)

# Every cost at 1x and 10x RealQA (14,715 / 147,150 photos, 5 labels each; 100x extrapolated with the fitted exponent),
# each size in a fresh database of its own (realqa_bench_scale_<size>x), Redis db 12 (issue #13). About 20 minutes.
# Quick: make bench-scale SCALE_ARGS="--sizes 0.02 0.1"
SCALE_ARGS ?=
.PHONY: bench-scale
bench-scale: venv
	$(PY) -m benchmarks.scale --workdir var/bench-scale $(SCALE_ARGS)

clean:
	rm -rf var/test-sqlite .pytest_cache
