"""The encodings the API accepts, for the bad-input tests: a body as JSON text, a urlencoded form or a multipart
form. Text no UTF-8 can carry (half a surrogate pair) goes in a form as a browser never would but a script can:
declared `charset=unicode_escape`, which Django honours."""

from __future__ import annotations

from urllib.parse import urlencode

from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

FORM_ENCODINGS = ("form", "multipart")


def _encodable(fields: dict[str, str]) -> bool:
    try:
        "".join(list(fields) + list(fields.values())).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def send_form(client, url: str, fields: dict[str, str], encoding: str):  # type: ignore[no-untyped-def]
    """POST the fields as a urlencoded ("form") or a multipart form."""
    charset = ""
    if not _encodable(fields):
        fields = {
            name.encode("unicode_escape").decode("ascii"): value.encode("unicode_escape").decode("ascii")
            for name, value in fields.items()
        }
        charset = "; charset=unicode_escape"
    if encoding == "form":
        content_type = "application/x-www-form-urlencoded" + charset
        return client.generic("POST", url, urlencode(fields), content_type=content_type)
    assert encoding == "multipart", encoding
    return client.generic("POST", url, encode_multipart(BOUNDARY, fields), content_type=MULTIPART_CONTENT + charset)
