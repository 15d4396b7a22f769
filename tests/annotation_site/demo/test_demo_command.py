"""`make demo` runs `manage.py demo`: this drives that command as a new user would, on a fresh
machine state (an empty var folder, no database or broker server), and looks at what it serves."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import sqlite3
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _login(opener: urllib.request.OpenerDirector, base: str, login_path: str, username: str, password: str) -> str:
    page = opener.open(base + login_path).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = {"csrfmiddlewaretoken": token, "username": username, "password": password}
    if "next" in login_path:
        form["next"] = urllib.parse.parse_qs(urllib.parse.urlparse(login_path).query)["next"][0]
    request = urllib.request.Request(base + login_path, data=urllib.parse.urlencode(form).encode(), headers={"Referer": base})
    return opener.open(request).read().decode()


@pytest.mark.zero_server
def test_the_demo_serves_the_admin_and_a_logged_in_rater_page(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MEDIA_ROOT"}}
    env.update(REALQA_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="annotation_site.settings.dev")
    log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                if urllib.request.urlopen(base + "/healthz", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(1)

        printed = (tmp_path / "demo.log").read_text()
        assert f"RealQA demo at {base}/" in printed
        assert "rater1 / realqa-rater1" in printed and "admin / realqa-admin" in printed

        rater = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        home = _login(rater, base, "/accounts/login/", "rater1", "realqa-rater1")
        assert "RealQA demo" in home and "Log out" in home
        image_count = int(re.search(r'data-project="realqa-demo".*?<td class="num">(\d+)</td>', home, re.S).group(1))
        assert image_count >= 40
        for task in ("/compare/", "/regions/", "/describe/"):  # every task type is on in the demo
            assert f"/projects/realqa-demo{task}" in home

        admin = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        index = _login(admin, base, "/admin/login/?next=/admin/", "admin", "realqa-admin")
        assert "Site administration" in index and "Projects" in index
        images = admin.open(base + "/admin/images/image/").read().decode()
        assert f"{image_count} images" in images
        thumbnail = re.search(r'<img src="(/media/images/thumbnails/[^"]+)"', images).group(1)
        assert admin.open(base + thumbnail).headers["Content-Type"] == "image/jpeg"

        worker_log = tmp_path / "var" / "worker.log"
        deadline = time.monotonic() + 60
        while " ready." not in worker_log.read_text():
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(1)

        # The demo's worker pre-scores every imported photo without anyone asking.
        database = sqlite3.connect(tmp_path / "var" / "db.sqlite3")
        deadline = time.monotonic() + 180
        while database.execute("SELECT COUNT(*) FROM predictions_imagefeatures").fetchone()[0] < image_count:
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(2)
        database.close()
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
        log.close()
