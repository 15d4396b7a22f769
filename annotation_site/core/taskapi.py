"""What the rater APIs of the tasks (labeling, comparisons, regions and descriptions) share: the request
envelope, the answers to next / submit / skip, and how a refused call is told. What a task's answer is, and
when it is refused, stays in its app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.models import Model
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .parsers import value_problem

MAX_CLIENT_INFO_CHARS = 2000

NOTHING_LEFT = OpenApiResponse(description="Nothing to do now; the X-RealQA-Reason header says why")


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class StrictSerializer(serializers.Serializer):
    """Unknown keys are refused by name: a typo must not be silently dropped."""

    def validate(self, attrs: dict) -> dict:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise ValidationError({key: "unknown field" for key in unknown})
        return attrs


class NextIn(StrictSerializer):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10,
        help_text="Ids of the tasks the client already shows; asking with the current one gets the one to prefetch.",
    )


# The envelope of a submit; each task adds its answer's fields.
class SubmitIn(StrictSerializer):
    idempotency_key = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=False)
    seconds_spent = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=86400)


class SubmitWithClientIn(SubmitIn):
    client = serializers.DictField(required=False, default=dict, help_text="Client details (screen size, user agent).")

    def validate_client(self, value: dict) -> dict:
        if len(json.dumps(value)) > MAX_CLIENT_INFO_CHARS:
            raise ValidationError(f"at most {MAX_CLIENT_INFO_CHARS} characters of JSON")
        return value


class ImageOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


def parse(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["expected a JSON object"]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    # Whichever parser read the body, no value goes on that a database cannot hold (NUL, half a surrogate).
    for name, value in serializer.validated_data.items():
        problem = value_problem(value, name, 1)
        if problem:
            raise ValidationError({name: [problem]})
    return serializer.validated_data


def next_response(result: object, *, nothing: type, payload: Callable[[Any], dict]) -> Response:
    """The task a service handed out, or 204 with the reason when it had `nothing` (a result with a reason)."""
    if isinstance(result, nothing):
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"X-RealQA-Reason": result.reason})  # type: ignore[attr-defined]
    return Response(payload(result))


def submit_response(
    *,
    name: str,
    answer: Model,
    created: bool,
    following: object,
    nothing: type,
    payload: Callable[[Any], dict],
    extra: dict | None = None,
) -> Response:
    """201 for a stored answer, 200 for a retry of one already stored (same idempotency key: nothing stored
    twice, the same answer), with the next task or the reason there is none."""
    body: dict = {name: {"id": answer.pk, "replayed": not created}}
    if isinstance(following, nothing):
        body["next"] = None
        body["next_reason"] = following.reason  # type: ignore[attr-defined]
    else:
        body["next"] = payload(following)
    body.update(extra or {})
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def task_error(
    exc: Exception,
    *,
    not_found: type[Exception] | tuple[type[Exception], ...],
    forbidden: type[Exception] | tuple[type[Exception], ...],
    conflict: type[Exception] | tuple[type[Exception], ...],
) -> APIException:
    """A service's refusal as the API tells it: no such task of yours 404, closed to you 403, already
    answered or taken 409, anything else 400."""
    if isinstance(exc, not_found):
        return NotFound(str(exc))
    if isinstance(exc, forbidden):
        return PermissionDenied(str(exc))
    if isinstance(exc, conflict):
        return Conflict(str(exc))
    return ValidationError({"non_field_errors": [str(exc)]})
