"""Scale-out: two web machines behind the sample nginx configuration (deploy/nginx.conf, TLS included),
on one database. Losing a whole web machine in the middle of labeling costs no acknowledged label:
nginx sends the raters to the other machine and clients resend what was cut off."""

from __future__ import annotations

import os
import signal
import time

import pytest

from annotation_site.labeling.benchmark import benchmark_seed
from annotation_site.labeling.models import Annotation
from benchmarks.soak import run_raters

from .services import Nginx, api, request

pytestmark = pytest.mark.postgres


def test_raters_keep_labeling_through_nginx_when_one_of_two_web_machines_is_lost(make_env, start_gunicorn):
    seed = benchmark_seed(slug="benchmark", images=300, raters=4, overlap=3)
    # As in production: HTTPS redirects on, which only works when the proxy's X-Forwarded-Proto arrives.
    env = make_env(SECURE_SSL_REDIRECT="1", FORWARDED_ALLOW_IPS="127.0.0.1")
    machines = [start_gunicorn(env, workers=1), start_gunicorn(env, workers=1)]
    proxy = Nginx([machine.port for machine in machines], media_root=env["MEDIA_ROOT"])
    proxy.start()
    try:
        status, _, response = request(proxy.http_port, "GET", "/api/v1/docs/")
        assert status == 301 and response.getheader("Location").startswith("https://")

        labels_at: dict[str, int] = {}

        def lose_a_machine(tally) -> None:  # type: ignore[no-untyped-def]
            time.sleep(2)
            labels_at["lost"] = len(tally.acknowledged)
            assert machines[0].process is not None
            os.killpg(machines[0].process.pid, signal.SIGKILL)  # master and workers at once
            time.sleep(3)
            labels_at["end"] = len(tally.acknowledged)

        posts = [
            (lambda token: lambda path, body: api(proxy.https_port, token, path, body, https=True))(token)
            for token in seed.tokens
        ]
        tally, _ = run_raters(posts, 0, during=lose_a_machine)
    finally:
        proxy.close()

    assert tally.unexpected == []
    # 502: a request the lost machine had taken; resent by the client like any broken connection.
    assert set(tally.statuses) <= {200, 201, 204, 502}, tally.statuses
    assert labels_at["end"] > labels_at["lost"] > 0
    acknowledged = set(tally.acknowledged.values())
    assert acknowledged == set(Annotation.objects.values_list("id", flat=True))
