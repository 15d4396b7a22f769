import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings.production")

application = get_wsgi_application()

# Import the URLconf, and with it every view module, now rather than on a worker's first request, so no
# rater meets a cold worker (with gunicorn --preload this happens once, before the workers fork).
get_resolver().check()
