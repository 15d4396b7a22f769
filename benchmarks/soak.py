"""Soak: N raters label for a long time through the rater API against the production stack on this
machine (gunicorn with deploy/gunicorn.conf.py, PostgreSQL, Redis), and every label acknowledged to a
rater's client is looked for in the database afterwards.

    make bench-soak             # or: python -m benchmarks.soak --raters 50 --seconds 600

Each simulated rater does what a well-behaved client does: it submits with an idempotency key and, when
the connection breaks or the server answers 503, retries the same submit with the same key. A label
counts as acknowledged when a submit answered 201 (stored) or 200 (a retry of a stored one). Prints one
JSON line: acknowledged, stored, lost (acknowledged but not in the database, must be 0), labels_per_s,
latencies, errors, and the resident memory of the gunicorn workers at the start and the end.

The rater loop (`rater_loop`) is shared with the fault tests (tests/faults/), which run it while they
stop Redis or restart PostgreSQL under it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.rater_load import labels_for

REPO = Path(__file__).resolve().parent.parent
SLUG = "benchmark"
# Statuses after which the same request is sent again (the server or the connection was away).
RETRY_STATUSES = {502, 503, 504}

Post = Callable[[str, dict], tuple[int, object]]


@dataclass
class Tally:
    """What the raters' clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, int] = field(default_factory=dict)  # idempotency key -> annotation id
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    retries: int = 0
    loop_seconds: list[float] = field(default_factory=list)

    def saw(self, what: object) -> None:
        with self.lock:
            self.statuses[what] += 1


def _send(post: Post, path: str, body: dict, tally: Tally, deadline: float) -> tuple[int, object] | None:
    """The request, sent again while the server is away (connection errors, 502/503/504) until it
    answers or `deadline` passes (None then)."""
    pause = 0.05
    while True:
        try:
            status, data = post(path, body)
        except OSError as exc:
            tally.saw(type(exc).__name__)
            status, data = -1, None
        else:
            tally.saw(status)
        if status not in RETRY_STATUSES and status != -1:
            return status, data
        if time.monotonic() > deadline:
            return None
        with tally.lock:
            tally.retries += 1
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def rater_loop(post: Post, rater: int, slug: str, stop: threading.Event, tally: Tally, *, think: float = 0.0,
               settle_seconds: float = 60.0) -> None:
    """Label until `stop` is set: take the next assignment, submit labels for it, retry what the server
    could not answer. A submit under way when `stop` comes is still seen through (up to settle_seconds),
    so that every label the server stored is known to the client."""
    assignment: dict | None = None
    while not stop.is_set():
        started = time.monotonic()
        if assignment is None:
            answer = _send(post, f"/api/v1/projects/{slug}/next", {}, tally, time.monotonic() + settle_seconds)
            if answer is None:
                continue
            status, data = answer
            if status != 200:
                if status != 204:
                    with tally.lock:
                        tally.unexpected.append(f"next -> {status}: {str(data)[:200]}")
                time.sleep(0.2)
                continue
            assignment = data  # type: ignore[assignment]
        assert assignment is not None
        key = f"r{rater}-a{assignment['id']}"
        body = {"labels": labels_for(assignment["image"]["id"], rater), "idempotency_key": key, "seconds_spent": 3.0}
        answer = _send(post, f"/api/v1/assignments/{assignment['id']}/submit", body, tally, time.monotonic() + settle_seconds)
        if answer is None:
            assignment = None
            continue
        status, data = answer
        if status in (200, 201):
            with tally.lock:
                tally.acknowledged[key] = data["annotation"]["id"]  # type: ignore[index]
                tally.loop_seconds.append(time.monotonic() - started)
            assignment = data.get("next")  # type: ignore[union-attr]
        else:
            with tally.lock:
                tally.unexpected.append(f"submit -> {status}: {str(data)[:200]}")
            assignment = None
        if think:
            time.sleep(think)


def run_raters(posts: list[Post], seconds: float, *, slug: str = SLUG, think: float = 0.0,
               during: Callable[[Tally], None] | None = None) -> tuple[Tally, float]:
    """Every client labels for `seconds` (or, when `during` is given, until `during(tally)` returns);
    returns the tally and the elapsed time."""
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=rater_loop, args=(post, i, slug, stop, tally), kwargs={"think": think})
               for i, post in enumerate(posts)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            during(tally)
        else:
            time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return tally, time.monotonic() - started


def token_poster(port: int, token: str) -> Post:
    from tests.faults.services import api

    return lambda path, body: api(port, token, path, body, timeout=30)


# --- the soak run -----------------------------------------------------------------------------------


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return round(total / 1024, 1)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, IndexError, ValueError):
                pass
    return found


def stored_ids(database_url: str, slug: str = SLUG) -> set[int]:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT a.id FROM labeling_annotation a JOIN projects_project p ON p.id = a.project_id WHERE p.slug = %s",
            (slug,),
        ).fetchall()
    return {row[0] for row in rows}


def run_soak(*, raters: int, seconds: float, images: int, overlap: int, workers: int, server_url: str,
             database: str, redis_url: str, var_dir: Path, template: str | None = None) -> dict:
    """template: an already migrated database to copy instead of migrating (the tests' cluster has one)."""
    import psycopg
    import redis

    from tests.faults.services import Gunicorn, server_env

    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    with psycopg.connect(server_url.replace("postgres://", "postgresql://", 1) + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else ""))
    redis.Redis.from_url(redis_url).flushdb()
    database_url = f"{server_url}/{database}"
    env = server_env(database_url=database_url, redis_url=redis_url, media_root=str(var_dir / "media"),
                     var_dir=var_dir, fault_dir=var_dir, DJANGO_SETTINGS_MODULE="annotation_site.settings.production")
    manage = [sys.executable, "manage.py"]
    if template is None:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    tokens_file = var_dir / "tokens.txt"
    subprocess.run([*manage, "seed_benchmark", "--images", str(images), "--raters", str(raters), "--overlap",
                    str(overlap), "--tokens-file", str(tokens_file)], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    tokens = tokens_file.read_text().split()

    server = Gunicorn(env=env, log=var_dir / "gunicorn.log", workers=workers)
    server.start()
    try:
        assert server.process is not None
        gunicorn_workers = _children(server.process.pid)
        rss_start = _rss_mb(gunicorn_workers)
        tally, elapsed = run_raters([token_poster(server.port, token) for token in tokens], seconds)
        rss_end = _rss_mb(_children(server.process.pid))
    finally:
        server.stop()

    stored = stored_ids(database_url)
    acknowledged = set(tally.acknowledged.values())
    ordered = sorted(tally.loop_seconds)
    q = lambda p: round(ordered[int(p * (len(ordered) - 1))] * 1000, 1) if ordered else None  # noqa: E731
    return {
        "benchmark": "soak",
        "raters": raters,
        "seconds": round(elapsed, 1),
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "lost": len(acknowledged - stored),
        "labels_per_s": round(len(acknowledged) / elapsed, 2),
        "loop_p50_ms": q(0.5),
        "loop_p99_ms": q(0.99),
        "retries": tally.retries,
        "errors": len(tally.unexpected) + sum(n for s, n in tally.statuses.items() if isinstance(s, int) and s >= 500),
        "gunicorn_workers": workers,
        "gunicorn_rss_mb_start": rss_start,
        "gunicorn_rss_mb_end": rss_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--images", type=int, default=0,
                        help="images in the pool (default: enough for 400 labels/s over the whole run)")
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3 suit 2 cores, see BENCHMARKS.md)")
    parser.add_argument("--server", default=os.environ.get("SOAK_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL, without a database name")
    parser.add_argument("--database", default="realqa_soak", help="created afresh (dropped if it exists)")
    parser.add_argument("--redis-url", default=os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/13"),
                        help="cache and broker; this Redis database is emptied first")
    args = parser.parse_args()
    images = args.images or max(2000, int(400 * args.seconds / args.overlap))
    result = run_soak(raters=args.raters, seconds=args.seconds, images=images, overlap=args.overlap,
                      workers=args.workers, server_url=args.server.rstrip("/"), database=args.database,
                      redis_url=args.redis_url, var_dir=REPO / "var" / "bench-soak")
    print(json.dumps(result), flush=True)
    if result["lost"]:
        sys.exit(f"{result['lost']} acknowledged labels are not in the database")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a TERM stops the servers it started
    main()
