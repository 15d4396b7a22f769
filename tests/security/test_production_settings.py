"""Production: HTTPS-only cookies and headers on real responses, and secrets only from the environment.
(`check --deploy` clean is tests/annotation_site/core/test_settings.py's, and `make check`'s.)"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "annotation_site.settings.production",
    "SECRET_KEY": "a-long-random-production-secret-" + "Qp7x2" * 10,
    "ALLOWED_HOSTS": "labels.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://labels.example.org",
}


def _run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {"SECRET_KEY", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "LOG_FORMAT"}
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**clean, **env}, capture_output=True, text=True)


_RESPONSES = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
# Production serves hashed static names from collectstatic's manifest; plain names do for this check.
override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
client = Client(HTTP_HOST="labels.example.org")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "status": secure.status_code,
    "headers": dict(secure.headers),
    "csrf_cookie": secure.cookies["csrftoken"].output(),
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_PROXY_SSL_HEADER", "X_FRAME_OPTIONS",
        "SECURE_REFERRER_POLICY", "SECURE_CONTENT_TYPE_NOSNIFF", "SESSION_COOKIE_SAMESITE")},
}))
"""


def test_production_answers_over_https_only_with_secure_cookies_and_headers(tmp_path) -> None:
    result = _run(_RESPONSES, REALQA_VAR_DIR=str(tmp_path), **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])

    assert seen["plain"] == [301, "https://labels.example.org/accounts/login/"]
    assert seen["status"] == 200
    headers = seen["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Content-Security-Policy"] == (
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'; script-src 'self'"
    )
    assert "Secure" in seen["csrf_cookie"] and "SameSite=Lax" in seen["csrf_cookie"]
    assert seen["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def test_the_secret_key_comes_from_the_environment_and_nothing_starts_without_it() -> None:
    shown = _run("import django; django.setup()\nfrom django.conf import settings\nprint(settings.SECRET_KEY)", **PRODUCTION_ENV)
    assert shown.stdout.strip() == PRODUCTION_ENV["SECRET_KEY"]

    without = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    refused = _run("import django; django.setup()", **without)
    assert refused.returncode != 0 and "SECRET_KEY must be set in the environment" in refused.stderr


_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
# The one literal allowed: the key debug mode (never production) falls back to, named as such.
_DEBUG_ONLY_KEY = "insecure-development-key-never-used-in-production"
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.\w+)+")


def _literal_strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value]


def test_no_settings_module_hard_codes_a_secret() -> None:
    found: list[str] = []
    for path in sorted((REPO / "annotation_site" / "settings").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                values = _literal_strings(node.value) if node.value is not None else []
            elif isinstance(node, ast.Dict):  # "PASSWORD": "..." inside DATABASES, CACHES, OPTIONS...
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and _SECRET_NAME.search(key.value):
                        if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                            found.append(f"{path.name}: {key.value} = {value.value!r}")
                continue
            else:
                continue
            if any(_SECRET_NAME.search(name) for name in names):
                for value in values:
                    if (
                        value != _DEBUG_ONLY_KEY
                        and not value.isupper()  # env_str("SECRET_KEY") names a variable
                        and not _DOTTED_PATH.fullmatch(value)  # PASSWORD_HASHERS = ["django.contrib..."]
                    ):
                        found.append(f"{path.name}: {', '.join(names)} = {value!r}")
    assert found == []

    production = (REPO / "annotation_site" / "settings" / "production.py").read_text()
    assert _DEBUG_ONLY_KEY not in production


_LEAKS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    # A password in a URL, unless it is a placeholder: "...", "change-me", "<password>", "${VAR}".
    (
        re.compile(r"\b(?:postgres(?:ql)?|redis|amqp|mysql)://[^:/@\s]+:(?!\.\.\.@|\$\{|<|change-?me@)[^@\s]{3,}@", re.I),
        "a URL with a password",
    ),
    (re.compile(r"\bsk_live_[0-9a-zA-Z]{10,}"), "a live API key"),
]


def test_no_code_or_deployment_file_holds_a_credential() -> None:
    roots = ["annotation_site", "workers", "realqa_model", "deploy", "fixtures", "Makefile", "README.md"]
    found: list[str] = []
    for root in roots:
        base = REPO / root
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()] if base.exists() else []
        for path in files:
            if path.suffix in {".pyc", ".png", ".jpg", ".gif", ".webp", ".ico", ".woff2", ".sqlite3", ".pt"}:
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            for pattern, what in _LEAKS:
                for match in pattern.finditer(text):
                    found.append(f"{path.relative_to(REPO)}: {what}: {match.group(0)[:60]}")
    assert found == []


def test_the_metrics_token_and_object_store_keys_are_read_from_the_environment_only() -> None:
    code = "\n".join(path.read_text() for path in (REPO / "annotation_site").rglob("*.py"))
    assert 'os.environ.get("METRICS_TOKEN"' in code
    assert "AWS_SECRET_ACCESS_KEY" not in code  # boto3 reads it from the environment itself
