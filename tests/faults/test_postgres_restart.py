"""PostgreSQL restarted (a crash, then a clean restart) while raters label: requests caught in it answer
503 with a retry hint, never 500; clients retry with their idempotency keys; afterwards every label
acknowledged to a rater is in the database exactly once, and nothing else is."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.soak import run_raters, stored_ids, token_poster

from .services import REPO, request

pytestmark = [pytest.mark.postgres]


def test_labels_acknowledged_around_postgres_restarts_are_all_stored_exactly_once(
    private_postgres, make_env, start_gunicorn, tmp_path
):
    database_url = private_postgres.create_database("realqa_restart", template=private_postgres.migrated_template())
    env = make_env(database_url=database_url)
    tokens_file = tmp_path / "tokens.txt"
    subprocess.run(
        [sys.executable, "manage.py", "seed_benchmark", "--images", "400", "--raters", "4", "--overlap", "3",
         "--tokens-file", str(tokens_file)],
        cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    server = start_gunicorn(env, workers=2)
    refusals: list[tuple[int, object]] = []

    def restarts(tally) -> None:  # type: ignore[no-untyped-def]
        time.sleep(2)
        private_postgres.restart("immediate")  # every backend killed mid-statement, WAL replayed on start
        time.sleep(2)
        private_postgres.stop("immediate")
        # While the server is down: what a client is told.
        status, body, response = request(server.port, "POST", "/api/v1/projects/benchmark/next", body={},
                                         headers={"Authorization": f"Token {tokens[0]}"})
        refusals.append((status, body, response.getheader("Retry-After")))
        private_postgres.start()
        time.sleep(2)

    tokens = tokens_file.read_text().split()
    tally, _ = run_raters([token_poster(server.port, token) for token in tokens], 0, think=0.01, during=restarts)

    [(status, body, retry_after)] = refusals
    assert status == 503 and retry_after == "2" and body["retry_after"] == 2 and "Retry" in body["detail"]
    assert tally.unexpected == []
    assert set(tally.statuses) <= {200, 201, 204, 503}, tally.statuses  # never a 500, never a dropped connection
    assert tally.statuses[503] > 0  # the clients did run into the restarts
    acknowledged = set(tally.acknowledged.values())
    stored = stored_ids(database_url)
    assert len(acknowledged) == len(tally.acknowledged) > 0
    assert acknowledged == stored
