"""Sending a file of the media storage once a view has checked who may have it."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect


def stored_file_response(name: str, *, content_type: str, download_as: str = "") -> HttpResponse:
    """The cheapest answer the deployment allows: a redirect to the object store's own signed, short-lived URL;
    with MEDIA_X_ACCEL_REDIRECT, an empty answer that has nginx send the file from its internal location over
    MEDIA_ROOT (deploy/nginx.conf), so a gunicorn worker is busy for the check only; else the bytes themselves (debug
    and the zero-server mode). ``download_as`` makes it an attachment of that name. Http404 when the file is gone."""
    if not isinstance(default_storage, FileSystemStorage):
        return HttpResponseRedirect(default_storage.url(name))
    if settings.MEDIA_X_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_X_ACCEL_REDIRECT + quote(name)
        if download_as:
            response["Content-Disposition"] = f'attachment; filename="{download_as}"'
        return response
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("no such file") from None
    return FileResponse(handle, content_type=content_type, as_attachment=bool(download_as), filename=download_as)
