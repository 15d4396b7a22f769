"""The rater API: the same rules as the labeling page, for scripts and other front ends."""

from __future__ import annotations

import json

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.projects.models import Project
from annotation_site.schemas.selectors import schema_version_current
from annotation_site.schemas.spec import LabelError

from .assignments import (
    AssignmentClosed,
    AssignmentError,
    AssignmentNotFound,
    NoAssignment,
    ProjectClosed,
    assignment_next,
    assignment_skip,
    assignment_submit,
)
from .models import Assignment
from .selectors import assignment_payload
from .services import AnnotationConflict

MAX_CLIENT_INFO_CHARS = 2000


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


class NextSerializer(StrictSerializer):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10,
        help_text="Assignment ids the client already shows; asking with the current one gets the one to prefetch.",
    )


class SubmitSerializer(StrictSerializer):
    labels = serializers.DictField(help_text="Field key to value, or to {\"value\": ..., \"reason\": \"...\"}.")
    idempotency_key = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=False)
    seconds_spent = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=86400)
    client = serializers.DictField(required=False, default=dict, help_text="Client details (screen size, user agent).")

    def validate_client(self, value: dict) -> dict:
        if len(json.dumps(value)) > MAX_CLIENT_INFO_CHARS:
            raise ValidationError(f"at most {MAX_CLIENT_INFO_CHARS} characters of JSON")
        return value


class SkipSerializer(StrictSerializer):
    reason = serializers.ChoiceField(choices=Assignment.SkipReason.choices)


class ImageOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class AssignmentOut(serializers.Serializer):
    id = serializers.IntegerField()
    phase = serializers.ChoiceField(choices=["qualification", "labeling"])
    expires_at = serializers.DateTimeField()
    schema_version = serializers.IntegerField()
    image = ImageOut()
    prediction = serializers.DictField(required=False, help_text="Only when the project shows the model's guess.")


class SubmitOut(serializers.Serializer):
    annotation = serializers.DictField(help_text='{"id": ..., "replayed": false}')
    next = AssignmentOut(allow_null=True)
    next_reason = serializers.CharField(required=False, help_text="Why `next` is null: done, daily_cap, ...")
    feedback = serializers.DictField(required=False, help_text="After a qualification answer only.")


class SchemaOut(serializers.Serializer):
    version = serializers.IntegerField()
    schema = serializers.DictField()


_NOTHING_LEFT = OpenApiResponse(description="Nothing to label now; the X-RealQA-Reason header says why")


def _parse(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["expected a JSON object"]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _next_response(result: Assignment | NoAssignment, *, code: int = status.HTTP_200_OK) -> Response:
    if isinstance(result, NoAssignment):
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"X-RealQA-Reason": result.reason})
    return Response(assignment_payload(result), status=code)


def _project(slug: str) -> Project:
    return get_object_or_404(Project, slug=slug, is_active=True)


def _api_error(exc: Exception) -> APIException:
    if isinstance(exc, AssignmentNotFound):
        return NotFound(str(exc))
    if isinstance(exc, ProjectClosed):
        return PermissionDenied(str(exc))
    if isinstance(exc, (AssignmentClosed, AnnotationConflict)):
        return Conflict(str(exc))
    if isinstance(exc, LabelError):
        return ValidationError({"labels": exc.errors})
    return ValidationError({"non_field_errors": [str(exc)]})


class NextAssignmentView(APIView):
    @extend_schema(
        request=NextSerializer,
        responses={200: AssignmentOut, 204: _NOTHING_LEFT},
        summary="The rater's next assignment",
    )
    def post(self, request: Request, slug: str) -> Response:
        exclude = _parse(NextSerializer, request)["exclude"]
        project = _project(slug)
        try:
            return _next_response(assignment_next(project=project, rater=request.user, exclude=exclude))
        except ProjectClosed as exc:
            if not project.open_to_all_raters and not project.memberships.filter(rater=request.user).exists():
                raise Http404 from None  # a closed project is not even acknowledged to outsiders
            raise _api_error(exc) from None


class SubmitView(APIView):
    @extend_schema(
        request=SubmitSerializer,
        responses={201: SubmitOut, 200: SubmitOut},
        summary="Submit labels and get the next assignment",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        body = _parse(SubmitSerializer, request)
        try:
            result = assignment_submit(
                assignment_id=assignment_id,
                rater=request.user,
                labels=body["labels"],
                idempotency_key=body.get("idempotency_key"),
                seconds_spent=body.get("seconds_spent"),
                client_info=body["client"],
            )
        except (AssignmentError, LabelError, AnnotationConflict) as exc:
            raise _api_error(exc) from None
        payload: dict = {
            "annotation": {"id": result.annotation.pk, "replayed": not result.created},
            "next": None if isinstance(result.next, NoAssignment) else assignment_payload(result.next),
        }
        if isinstance(result.next, NoAssignment):
            payload["next_reason"] = result.next.reason
        if result.feedback is not None:
            payload["feedback"] = result.feedback
        return Response(payload, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SkipView(APIView):
    @extend_schema(
        request=SkipSerializer,
        responses={200: AssignmentOut, 204: _NOTHING_LEFT},
        summary="Give an image back with a reason and get the next assignment",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = _parse(SkipSerializer, request)["reason"]
        try:
            return _next_response(assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason))
        except AssignmentError as exc:
            raise _api_error(exc) from None


class ProjectSchemaView(APIView):
    @extend_schema(responses=SchemaOut, summary="The project's current annotation schema")
    def get(self, request: Request, slug: str) -> Response:
        project = _project(slug)
        if not project.open_to_all_raters and not project.memberships.filter(rater=request.user).exists():
            raise Http404  # as the labeling page: a closed project is not even acknowledged to outsiders
        version = schema_version_current(project=project)
        return Response({"version": version.version, "schema": version.definition})
