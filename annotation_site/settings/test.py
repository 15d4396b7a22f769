"""The test suite: the development settings with fast password hashing and files under a
throwaway folder. DATABASE_URL and REDIS_URL pick the real services (see Makefile)."""

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "1")

from .base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A worker process started by a test is handed the same folder through MEDIA_ROOT.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="realqa-test-media-"))  # noqa: F405
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# A project model trained in a test needs to learn, not to be good: a short run of a small ensemble.
MODEL_TRAINING = {"epochs": 80, "ensemble_size": 3}
