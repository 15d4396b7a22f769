"""Real services that a fault test may stop, freeze or restart: each one private to the test, on a free
port, so the shared PostgreSQL and Redis of the machine are never touched."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("REALQA_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_SETTINGS = "tests.faults.settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_process(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """TERM the process group we started, KILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- Redis ---------------------------------------------------------------------------------------


class PrivateRedis:
    """redis-server on a free port with append-only persistence (as docs/deployment.md asks of
    production), so a stop and start keeps what was queued."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="realqa-redis-"))
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--logfile", str(self.dir / "redis.log")],
            start_new_session=True,
        )
        wait_until(lambda: _port_open(self.port), timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """A clean stop: connections are refused until start()."""
        if self.process is not None:
            _stop_process(self.process)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers, like a hung server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self, db: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.url(db), socket_timeout=5)

    def close(self) -> None:
        if self.process is not None:
            self.thaw()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- PostgreSQL ----------------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and these machines run the tests as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throwaway cluster (initdb) on a free port, in a temporary folder, that a test may restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="realqa-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--no-sync", "--no-instructions"]),
            check=True, stdout=subprocess.DEVNULL,
        )

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]), check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        # fsync off: a throwaway cluster; a crash of the server process (what the tests do) loses nothing
        # committed either way, only a crash of the machine would.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._ctl("-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        """immediate: every backend dies at once, as in a crash, and the restart replays the WAL."""
        self.stop(mode)
        self.start()

    def migrated_template(self) -> str:
        """A database with every migration applied, made once per cluster, to copy with create_database."""
        name = "realqa_migrated"
        if not getattr(self, "_migrated", False):
            url = self.create_database(name)
            env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test"}
            env.pop("REDIS_URL", None)
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
            self._migrated = True
        return name

    def create_database(self, name: str, *, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# --- Django processes ----------------------------------------------------------------------------


def server_env(*, database_url: str, redis_url: str | None, media_root: str, var_dir: Path, fault_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a production machine, pointed at the given services."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE=SERVER_SETTINGS,
        SECRET_KEY="fault-tests-only-" + "k" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database_url,
        MEDIA_ROOT=media_root,
        REALQA_VAR_DIR=str(var_dir),
        REALQA_FAULT_DIR=str(fault_dir),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


@dataclass
class Gunicorn:
    env: dict[str, str]
    log: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(self.workers)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py")],
            cwd=REPO, env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_until(self._healthy, timeout=60, what=f"gunicorn on port {self.port} (log: {self.log})", interval=0.3)
        except BaseException:
            self.stop()  # never leave a server behind
            raise

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}; log:\n{self.log.read_text()[-3000:]}")
        try:
            request(self.port, "GET", "/healthz", timeout=5)  # any answer: the app is loaded (--preload) and serving
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, timeout=30)
            self.process = None


@dataclass
class CeleryWorker:
    env: dict[str, str]
    log: Path
    name: str
    queues: str
    pool: str = "solo"
    beat: bool = False
    process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> None:
        command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", self.pool, "--concurrency", "1",
                   "-Q", self.queues, "-n", f"{self.name}@%h", "--include", "tests.faults.celery_hooks",
                   "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log.with_suffix(".beat-schedule"))]
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        # INFO: the worker says " ready." when it consumes.
        self.process = subprocess.Popen(command, cwd=REPO, env={**self.env, "LOG_LEVEL": "INFO"}, stdout=open(self.log, "a"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited; log:\n{self.log.read_text()[-3000:]}")
            return " ready." in self.log.read_text()[self._offset:]

        wait_until(ready, timeout=90, what=f"celery worker {self.name} (log: {self.log})", interval=0.3)

    def kill(self) -> None:
        """SIGKILL every process of the worker at once: what a lost machine looks like to the broker."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, timeout=30)
            self.process = None


# --- HTTP ----------------------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, *, body: object = None, headers: dict[str, str] | None = None, timeout: float = 30,
    https: bool = False,
) -> tuple[int, dict | str | None, http.client.HTTPResponse]:
    """One request on a fresh connection. Raises OSError (http.client errors included) when the
    connection breaks."""
    if https:  # the test proxy's certificate is self-signed
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = None
        all_headers = dict(headers or {})
        if body is not None:
            payload = json.dumps(body) if not isinstance(body, (bytes, str)) else body
            all_headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    text = data.decode("utf-8", "replace")
    parsed: dict | str | None = text
    if response.getheader("Content-Type", "").startswith("application/json") and data:
        parsed = json.loads(data)
    elif not data:
        parsed = None
    return response.status, parsed, response


def api(port: int, token: str, path: str, body: dict | None = None, *, timeout: float = 30,
        https: bool = False) -> tuple[int, dict | str | None]:
    status, parsed, _ = request(port, "POST", path, body=body or {}, headers={"Authorization": f"Token {token}"},
                                timeout=timeout, https=https)
    return status, parsed


class Browser:
    """A signed-in person's session: cookies, the CSRF token, forms and JSON calls, over http.client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        headers.update(extra or {})
        return headers

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def call(self, method: str, path: str, *, body: object = None, headers: dict[str, str] | None = None,
             timeout: float = 30) -> tuple[int, dict | str | None]:
        status, parsed, response = request(self.port, method, path, body=body, headers=self._headers(headers), timeout=timeout)
        self._keep_cookies(response)
        return status, parsed

    def login(self, username: str, password: str) -> int:
        """The login form, as a person fills it in; the status of the answer (302 when signed in)."""
        self.call("GET", "/accounts/login/")
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        from urllib.parse import urlencode

        return self.call("POST", "/accounts/login/", body=urlencode(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})[0]

    def upload(self, path: str, files: dict[str, bytes], *, timeout: float = 60) -> tuple[int, dict | str | None]:
        """A multipart upload of files under the field name "files", asking for the JSON answer."""
        boundary = "realqa-faults-boundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{self.cookies["csrftoken"]}\r\n'.encode()]
        for name, data in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.call("POST", path, body=b"".join(parts), timeout=timeout, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Accept": "application/json"})


# --- nginx ---------------------------------------------------------------------------------------


class Nginx:
    """nginx running deploy/nginx.conf itself, with only what cannot exist on a test machine replaced:
    the ports, the certificate (self-signed here), the upstream addresses and the media folder."""

    def __init__(self, upstream_ports: list[int], media_root: str) -> None:
        self.http_port, self.https_port = free_port(), free_port()
        self.root = Path(tempfile.mkdtemp(prefix="realqa-nginx-"))
        self.process: subprocess.Popen | None = None
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=labels.example.org",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.root / "cert.pem")],
            check=True, capture_output=True,
        )
        site = (REPO / "deploy" / "nginx.conf").read_text()
        replacements = [
            (r"\n\s*listen \[::\]:\d+[^;]*;", ""),  # no IPv6 needed on loopback
            (r"listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            (r"listen 443 ", f"listen 127.0.0.1:{self.https_port} "),
            (r"/etc/letsencrypt/live/labels\.example\.org/fullchain\.pem", str(self.root / "cert.pem")),
            (r"/etc/letsencrypt/live/labels\.example\.org/privkey\.pem", str(self.root / "key.pem")),
            (r"/srv/realqa/media/", media_root.rstrip("/") + "/"),
            (r"    server 127\.0\.0\.1:8000 ([^;]*);",
             "\n".join(f"    server 127.0.0.1:{port} \\1;" for port in upstream_ports)),
        ]
        for pattern, replacement in replacements:
            site, count = re.subn(pattern, replacement, site)
            assert count, f"deploy/nginx.conf no longer has {pattern!r}; update tests/faults/services.py"
        (self.root / "realqa.conf").write_text(site)
        temp = "\n".join(f"    {kind}_temp_path {self.root / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.root / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"worker_processes 1;\npid {self.root / 'nginx.pid'};\nerror_log {self.root / 'error.log'};\n"
            + "events { worker_connections 256; }\n"
            + f"http {{\n    include /etc/nginx/mime.types;\n    access_log {self.root / 'access.log'};\n{temp}\n"
            + f"    include {self.root / 'realqa.conf'};\n}}\n"
        )

    def _command(self, *extra: str) -> list[str]:
        return [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf"), *extra]

    def start(self) -> None:
        check = subprocess.run(self._command("-t"), capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(self._command("-g", "daemon off;"), start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "w"))
        try:
            wait_until(lambda: _port_open(self.https_port), timeout=20, what="nginx")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
