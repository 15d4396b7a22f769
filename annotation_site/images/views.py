"""Media files, served only to those who may see them (see `image_file_visible`).

Django decides; it sends the bytes only in debug and the zero-server mode. In production the proxy sends them:
the answer carries `X-Accel-Redirect` to MEDIA_X_ACCEL_REDIRECT, an `internal` nginx location over MEDIA_ROOT
(deploy/nginx.conf), so a gunicorn worker is busy for the check only. With an object store the page's URLs
are already the store's own signed, short-lived ones (AWS_QUERYSTRING_EXPIRE); a /media/ URL that still reaches
this view is redirected to a fresh one after the same check.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from .selectors import image_file_visible

# Content-addressed names never change their bytes, so the browser may keep a file; "private" keeps shared caches
# from handing it to someone the check would refuse.
CACHE_CONTROL = "private, max-age=86400"


@require_safe
def media_file(request: HttpRequest, name: str) -> HttpResponse:
    # One answer for "no such file" and "not yours": a rater learns nothing about other projects' photos.
    if not image_file_visible(user=request.user, name=name):
        raise Http404("no such file")
    if not isinstance(default_storage, FileSystemStorage):
        response: HttpResponse = HttpResponseRedirect(default_storage.url(name))
        response["Cache-Control"] = "private, no-cache"  # the signed URL expires; ask again next time
        return response
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_X_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_REDIRECT + quote(name)
    else:
        try:
            response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
        except FileNotFoundError:
            raise Http404("no such file") from None
    response["Cache-Control"] = CACHE_CONTROL
    return response
