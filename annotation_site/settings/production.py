"""Production: debug off, SECRET_KEY and ALLOWED_HOSTS from the environment, HTTPS-only cookies and
headers. Passes `manage.py check --deploy`."""

import os

os.environ["DJANGO_DEBUG"] = "0"

from .base import *  # noqa: E402,F403
from .env import env_bool, env_int, env_str  # noqa: E402

if not ALLOWED_HOSTS:  # noqa: F405
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names this site answers to")

# Behind a reverse proxy that terminates TLS and sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
# Media: Django checks who asks, then hands the file to the proxy's internal location (deploy/nginx.conf);
# set it empty to have Django stream the bytes itself (no nginx in front).
MEDIA_X_ACCEL_REDIRECT = env_str("MEDIA_X_ACCEL_REDIRECT", "/protected-media/")
# The reverse proxy (deploy/nginx.conf) appends the caller's address to X-Forwarded-For; login throttling
# keys on it. Behind a load balancer in front of nginx, 2 (docs/deployment.md, "The caller's address").
LOGIN_TRUSTED_PROXIES = env_int("LOGIN_TRUSTED_PROXIES", 1 if env_bool("LOGIN_TRUST_X_FORWARDED_FOR", True) else 0)
