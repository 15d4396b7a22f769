"""A short run of the soak benchmark (`make bench-soak` runs 50 raters for 10 minutes)."""

from __future__ import annotations

import pytest

from benchmarks.soak import run_soak

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_every_label_acknowledged_during_a_short_soak_is_in_the_database(private_postgres, private_redis, tmp_path):
    result = run_soak(
        raters=5, seconds=10, images=500, overlap=3, workers=2, server_url=private_postgres.url("").rstrip("/"),
        database="realqa_soak_test", redis_url=private_redis.url(), var_dir=tmp_path / "soak",
        template=private_postgres.migrated_template(),
    )
    assert result["acknowledged"] > 0
    assert result["lost"] == 0
    assert result["stored"] == result["acknowledged"]
    assert result["errors"] == 0
