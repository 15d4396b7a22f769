from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from annotation_site.demo.services import demo_project_ensure, demo_users_ensure


class Command(BaseCommand):
    help = (
        "Set up the demo (migrations, the RealQA schema, a project of varied-quality photos, an admin and "
        "two raters), then start a Celery worker and the web server and print the URL and the logins."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--setup-only", action="store_true", help="prepare everything, start nothing")

    def handle(self, *args: object, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Building and importing the demo photos ...")
        project, report = demo_project_ensure(workers=os.cpu_count() or 1, progress=True)
        self.stdout.write(f"{project.slug}: {report.summary()}")
        logins = demo_users_ensure()
        if options["setup_only"]:
            return

        log_path = Path(settings.VAR_DIR) / "worker.log"
        with open(log_path, "ab") as log:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "--loglevel", "INFO",
                    # The demo's one worker also runs the periodic tasks (beat), e.g. the lease sweep.
                    "--beat", "--schedule", str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR,
            )
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nRealQA demo at {url}  (admin: {url}admin/)"))
        for login in logins:
            self.stdout.write(f"  {login.role:5}  {login.username} / {login.password}")
        self.stdout.write(f"Celery worker (pid {worker.pid}) logs to {log_path}. Stop both with Ctrl-C.\n")
        # A plain kill must stop the worker too, as Ctrl-C does: both unwind through the finally below.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            worker.terminate()
            worker.wait(timeout=15)
