"""The import rules of the architecture: the web never pulls in the model, the model never pulls in
the web. A web process must start fast and small."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def test_the_web_package_never_imports_torch_transformers_the_model_or_the_workers() -> None:
    imported = _imported_roots("annotation_site")
    forbidden = {name: imported[name] for name in ("torch", "transformers", "realqa_model", "workers") if name in imported}
    assert forbidden == {}


def test_the_model_package_never_imports_django_or_the_web() -> None:
    imported = _imported_roots("realqa_model")
    forbidden = {name: imported[name] for name in ("django", "annotation_site", "workers", "celery") if name in imported}
    assert forbidden == {}


def test_a_web_process_serves_pages_without_loading_torch() -> None:
    script = (
        "import sys, django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "import annotation_site.wsgi\n"
        "assert Client(HTTP_HOST='localhost').get('/accounts/login/').status_code == 200\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'realqa_model') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings.test"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
