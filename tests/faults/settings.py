"""Settings of the web servers and workers that the fault tests start: production, plus a hook that can
hold one request at a chosen moment so a test can kill the process serving it (tests/faults/hooks.py)."""

from annotation_site.settings.production import *  # noqa: F403

MIDDLEWARE = ["tests.faults.hooks.HoldRequestMiddleware", *MIDDLEWARE]  # noqa: F405
# Pages render without a collectstatic run.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Users made by the tests carry the test settings' fast MD5 hashes; keep them verifiable here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]
