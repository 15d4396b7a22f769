"""A gunicorn worker killed in the middle of a submit: the rater's client sees its connection break,
retries with the same idempotency key, and the label exists exactly once."""

from __future__ import annotations

import os
import signal
import threading
import uuid

from annotation_site.labeling.benchmark import benchmark_seed
from annotation_site.labeling.models import Annotation
from benchmarks.rater_load import labels_for

from .services import api, wait_until


def _submit_while_the_worker_is_killed(port: int, token: str, path: str, body: dict, fault_dir) -> Exception | None:  # type: ignore[no-untyped-def]
    """Sends the submit, waits until the worker serving it reached the hold, SIGKILLs that worker, and
    returns what the client saw."""
    seen: dict[str, object] = {}

    def send() -> None:
        try:
            seen["response"] = api(port, token, path, body)
        except OSError as exc:
            seen["error"] = exc

    client = threading.Thread(target=send)
    client.start()
    [held] = wait_until(lambda: list(fault_dir.glob("held-submit-*")), timeout=30, what="the submit to reach the hold")
    os.kill(int(held.read_text()), signal.SIGKILL)
    held.unlink()
    client.join(timeout=30)
    assert "response" not in seen, f"the killed worker answered: {seen['response']}"
    return seen.get("error")  # type: ignore[return-value]


def test_a_submit_whose_worker_is_killed_is_stored_exactly_once_after_the_client_retries(
    transactional_db, make_env, start_gunicorn, fault_dir
):
    seed = benchmark_seed(slug="faults", images=12, raters=1, overlap=1)
    token = seed.tokens[0]
    server = start_gunicorn(make_env(), workers=2)
    status, assignment = api(server.port, token, "/api/v1/projects/faults/next")
    assert status == 200

    retries = {}
    # "after": the label was committed and the worker died before answering; "before": it died first.
    for phase in ("after", "before"):
        (fault_dir / "hold-submit").write_text(phase)
        path = f"/api/v1/assignments/{assignment['id']}/submit"
        body = {"labels": labels_for(assignment["image"]["id"], 0), "idempotency_key": uuid.uuid4().hex, "seconds_spent": 4.0}

        error = _submit_while_the_worker_is_killed(server.port, token, path, body, fault_dir)
        assert isinstance(error, OSError)

        status, retry = api(server.port, token, path, body)
        stored = Annotation.objects.filter(rater__username="bench-rater-0", assignment_id=assignment["id"])
        assert stored.count() == 1
        assert Annotation.objects.filter(idempotency_key=body["idempotency_key"]).count() == 1
        assert retry["annotation"]["id"] == stored.get().pk
        if phase == "after":
            assert (status, retry["annotation"]["replayed"]) == (200, True)
        else:
            assert (status, retry["annotation"]["replayed"]) == (201, False)
        # The retry hands out the same next assignment as the lost answer did: the rater's held lease.
        status, held_next = api(server.port, token, "/api/v1/projects/faults/next")
        assert status == 200 and held_next["id"] == retry["next"]["id"]
        retries[phase] = retry
        assignment = retry["next"]

    # A retry reads like any other success, so a client needs no special case for it.
    status, normal = api(
        server.port, token, f"/api/v1/assignments/{assignment['id']}/submit",
        {"labels": labels_for(assignment["image"]["id"], 0), "idempotency_key": uuid.uuid4().hex},
    )
    assert status == 201
    for retry in retries.values():
        assert retry.keys() == normal.keys()
        assert retry["annotation"].keys() == normal["annotation"].keys()
        assert retry["next"].keys() == normal["next"].keys()
    assert Annotation.objects.count() == 3
