"""Media files, served only to those who may see them (see `image_file_visible`).

Django decides; it sends the bytes only in debug and the zero-server mode. In production the proxy sends them:
the answer carries `X-Accel-Redirect` to MEDIA_X_ACCEL_REDIRECT, an `internal` nginx location over MEDIA_ROOT
(deploy/nginx.conf), so a gunicorn worker is busy for the check only. With an object store the page's URLs
are already the store's own signed, short-lived ones (AWS_QUERYSTRING_EXPIRE); a /media/ URL that still reaches
this view is redirected to a fresh one after the same check.
"""

from __future__ import annotations

import mimetypes

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from annotation_site.core.storedfiles import stored_file_response

from .selectors import image_file_visible

# Content-addressed names never change their bytes, so the browser may keep a file; "private" keeps shared caches
# from handing it to someone the check would refuse.
CACHE_CONTROL = "private, max-age=86400"


@require_safe
def media_file(request: HttpRequest, name: str) -> HttpResponse:
    # One answer for "no such file" and "not yours": a rater learns nothing about other projects' photos.
    if not image_file_visible(user=request.user, name=name):
        raise Http404("no such file")
    response = stored_file_response(name, content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
    # A signed URL expires, so the redirect is asked for again next time; the bytes behind a name never change.
    response["Cache-Control"] = "private, no-cache" if isinstance(response, HttpResponseRedirect) else CACHE_CONTROL
    return response
