"""Rater-loop load: N simulated raters label as fast as the server allows, through the rater API,
against gunicorn + PostgreSQL; optionally Label Studio with the same rater count in the same run.

    make bench-raters           # or: python -m benchmarks.rater_load --raters 20 --seconds 30 --anchor

One loop is what a rater does per label: get a task and submit its labels. Our submit answers with the
next assignment, so after the first task a loop is one request; Label Studio's is two (next, then
submit). Prints one JSON line per system, with the metric names of ../shared/anchors/labelstudio/load.py,
then one with the ratio."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANCHOR = REPO.parent / "shared" / "anchors" / "labelstudio"
BENCH_DB = "realqa_bench"
CHOICES = {
    "clarity": ["bad", "poor", "fair", "good", "excellent"],
    "exposure": ["severely_under", "under", "well", "over", "severely_over"],
    "saturation": ["under", "natural", "over"],
    "subject_integrity": ["incomplete", "partial", "complete", "no_subject"],
    "subject_clutter": ["uncluttered", "cluttered"],
    "background_clutter": ["uncluttered", "cluttered"],
    "level_shot": ["level", "slightly_tilted", "clearly_tilted", "no_horizon"],
}


def labels_for(image_id: int, rater: int) -> dict:
    """Twelve RealQA labels that vary with the image and the rater, like real answers do."""
    k = image_id * 7 + rater * 3
    labels: dict = {key: options[(k + i) % len(options)] for i, (key, options) in enumerate(CHOICES.items())}
    labels["subject_background"] = f"Subject: thing {image_id % 50}; background: place {k % 13}"
    labels["eye_catching"] = {"value": 1 + k % 10, "reason": "Simulated reason for the eye-catching score."}
    labels["composition"] = {"value": 1 + (k // 3) % 10, "reason": "Simulated reason for the composition score."}
    labels["quality"] = round(1 + (k % 91) / 10, 1)
    labels["aesthetics"] = round(1 + ((k * 5) % 91) / 10, 1)
    return labels


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _server_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="annotation_site.settings.production",
        SECRET_KEY="benchmark-only-" + "k" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        REALQA_VAR_DIR=str(var_dir),
        LOG_LEVEL="WARNING",
    )
    return env


def run_ours(raters: int, seconds: float, images: int, overlap: int, workers: int, threads: int) -> dict:
    var_dir = REPO / "var" / "bench-raters"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    _fresh_database()
    env = _server_env(var_dir)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    tokens_file = var_dir / "tokens.txt"
    subprocess.run(
        [*manage, "seed_benchmark", "--images", str(images), "--raters", str(raters), "--overlap", str(overlap),
         "--tokens-file", str(tokens_file)],
        cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    tokens = tokens_file.read_text().split()
    with server_running(env, var_dir, workers, threads) as port:
        result = _load(port, tokens, seconds, overlap)
    result.update(_database_check(env, result))
    return result


@contextlib.contextmanager
def server_running(env: dict[str, str], var_dir: Path, workers: int, threads: int) -> Iterator[int]:
    """gunicorn on a free loopback port with `env` (see _server_env), until the block ends; yields the port.
    Also used by benchmarks/scale.py."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "annotation_site.wsgi:application", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "--threads", str(threads), "--preload", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=open(var_dir / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        for _ in range(60):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"the server did not start; see {var_dir / 'server.log'}")
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _load(port: int, tokens: list[str], seconds: float, overlap: int, slug: str = "benchmark") -> dict:
    lock = threading.Lock()
    loops: list[float] = []
    acknowledged: list[int] = []
    errors = [0]
    seen: dict[int, list[int]] = {}
    stop = time.monotonic() + seconds

    def call(conn: http.client.HTTPConnection, path: str, token: str, body: dict) -> tuple[int, dict | None]:
        conn.request("POST", path, body=json.dumps(body), headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data[:1] == b"{" else None)

    def rater(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        assignment = None
        while time.monotonic() < stop:
            t0 = time.monotonic()
            if assignment is None:
                status, assignment = call(conn, f"/api/v1/projects/{slug}/next", tokens[i], {})
                if status != 200:
                    with lock:
                        errors[0] += status != 204
                    assignment = None
                    time.sleep(0.2)
                    continue
            image_id = assignment["image"]["id"]
            status, body = call(
                conn,
                f"/api/v1/assignments/{assignment['id']}/submit",
                tokens[i],
                {"labels": labels_for(image_id, i), "idempotency_key": f"{i}-{assignment['id']}", "seconds_spent": 3.0},
            )
            with lock:
                if status == 201:
                    loops.append(time.monotonic() - t0)
                    acknowledged.append(body["annotation"]["id"])
                    seen.setdefault(image_id, []).append(i)
                else:
                    errors[0] += 1
            assignment = body.get("next") if status == 201 and body else None

    threads = [threading.Thread(target=rater, args=(i,)) for i in range(len(tokens))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(loops)
    q = lambda p: round(ordered[int(p * (len(ordered) - 1))] * 1000, 1) if ordered else None  # noqa: E731
    return {
        "system": "realqa-platform",
        "raters": len(tokens),
        "seconds": round(elapsed, 1),
        "labels": len(loops),
        "labels_per_s": round(len(loops) / elapsed, 2),
        "loop_p50_ms": q(0.5),
        "loop_p99_ms": q(0.99),
        "errors": errors[0],
        "same_rater_twice": sum(len(v) != len(set(v)) for v in seen.values()),
        "over_overlap": sum(len(v) > overlap for v in seen.values()),
        "_acknowledged": acknowledged,
    }


def _database_check(env: dict[str, str], result: dict) -> dict:
    """What the database holds after the run: every acknowledged label stored, no image over its overlap."""
    script = (
        "import json, sys, django; django.setup()\n"
        "from django.db.models import Count\n"
        "from annotation_site.labeling.models import Annotation\n"
        "from annotation_site.projects.models import Project\n"
        "p = Project.objects.get(slug='benchmark')\n"
        "ids = set(Annotation.objects.filter(project=p).values_list('id', flat=True))\n"
        "acked = set(json.load(sys.stdin))\n"
        "over = Annotation.objects.filter(project=p).values('image').annotate(n=Count('id')).filter(n__gt=p.overlap).count()\n"
        "print(json.dumps({'stored': len(ids), 'lost': len(acked - ids), 'db_over_overlap': over}))\n"
    )
    acknowledged = result.pop("_acknowledged")
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, input=json.dumps(acknowledged), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def run_anchor(raters: int, seconds: float) -> dict:
    subprocess.run(["bash", str(ANCHOR / "setup.sh")], check=True, stdout=sys.stderr)
    try:
        out = subprocess.run(
            [sys.executable, str(ANCHOR / "load.py"), "--raters", str(raters), "--seconds", str(seconds)],
            check=True, capture_output=True, text=True,
        )
    finally:
        subprocess.run(["bash", str(ANCHOR / "setup.sh"), "stop"], check=False, stdout=subprocess.DEVNULL)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--images", type=int, default=10000, help="enough that 30 s of labeling never empties the pool")
    parser.add_argument("--overlap", type=int, default=3, help="the anchor's overlap is 3 (LS_OVERLAP)")
    parser.add_argument(
        "--workers", type=int, default=3, help="gunicorn workers (3 suits 2 cores best here; the anchor runs its default 4)"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (more than 1: gthread)")
    parser.add_argument("--anchor", action="store_true", help="also run Label Studio in the same run")
    args = parser.parse_args()

    ours = run_ours(args.raters, args.seconds, args.images, args.overlap, args.workers, args.threads)
    print(json.dumps(ours), flush=True)
    if args.anchor:
        anchor = run_anchor(args.raters, args.seconds)
        print(json.dumps(anchor), flush=True)
        print(json.dumps({
            "raters": args.raters,
            "labels_per_s_ratio": round(ours["labels_per_s"] / anchor["labels_per_s"], 1) if anchor["labels_per_s"] else None,
            "loop_p99_ms": {"ours": ours["loop_p99_ms"], "label_studio": anchor["loop_p99_ms"]},
        }))


if __name__ == "__main__":
    main()
