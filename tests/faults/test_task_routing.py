"""Scale-out: model tasks run on the workers of MODEL_QUEUE (GPU machines), everything else on the
default "cpu" queue, with no code change, only the environment of docs/deployment.md."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .services import REPO, wait_until

pytestmark = pytest.mark.redis


def test_model_tasks_go_to_the_gpu_workers_and_everything_else_to_the_cpu_workers(
    make_env, start_worker, fault_dir, private_redis
):
    env = make_env(redis_url=private_redis.url(), MODEL_QUEUE="gpu")
    machines = [start_worker(env, name=f"{queue}-machine", queues=queue, wait=False) for queue in ("cpu", "gpu")]
    for machine in machines:
        machine.wait_ready()

    # Sent the way the web sends every task: by name, with no queue given.
    script = "from annotation_site.core.tasks import enqueue\nenqueue('model.fault_probe')\nenqueue('faults.probe')\n"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True)

    log = fault_dir / "task-runs.log"

    def probes() -> dict[str, tuple[str, str]] | None:
        lines = [line.split() for line in (log.read_text().splitlines() if log.exists() else []) if line.startswith("probe")]
        found = {name: (worker.split("@")[0], queue) for _, name, worker, queue in lines}
        return found if len(found) == 2 else None

    assert wait_until(probes, timeout=60, what="both probe tasks to run") == {
        "model.fault_probe": ("gpu-machine", "gpu"),
        "faults.probe": ("cpu-machine", "cpu"),
    }
