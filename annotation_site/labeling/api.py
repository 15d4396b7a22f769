"""The rater API: the same rules as the labeling page, for scripts and other front ends."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.core.taskapi import (
    NOTHING_LEFT,
    ImageOut,
    NextIn,
    StrictSerializer,
    SubmitWithClientIn,
    next_response,
    parse,
    submit_response,
    task_error,
)
from annotation_site.projects.models import Project
from annotation_site.projects.selectors import project_hidden_from
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


class SubmitSerializer(SubmitWithClientIn):
    labels = serializers.DictField(help_text="Field key to value, or to {\"value\": ..., \"reason\": \"...\"}.")


class SkipSerializer(StrictSerializer):
    reason = serializers.ChoiceField(choices=Assignment.SkipReason.choices)


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


def _next_response(result: Assignment | NoAssignment) -> Response:
    return next_response(result, nothing=NoAssignment, payload=assignment_payload)


def _project(slug: str) -> Project:
    return get_object_or_404(Project, slug=slug, is_active=True)


def _api_error(exc: Exception) -> APIException:
    if isinstance(exc, LabelError):
        return ValidationError({"labels": exc.errors})
    return task_error(
        exc, not_found=AssignmentNotFound, forbidden=ProjectClosed, conflict=(AssignmentClosed, AnnotationConflict)
    )


class NextAssignmentView(APIView):
    @extend_schema(
        request=NextIn,
        responses={200: AssignmentOut, 204: NOTHING_LEFT},
        summary="The rater's next assignment",
    )
    def post(self, request: Request, slug: str) -> Response:
        exclude = parse(NextIn, request)["exclude"]
        project = _project(slug)
        try:
            return _next_response(assignment_next(project=project, rater=request.user, exclude=exclude))
        except ProjectClosed as exc:
            if project_hidden_from(project=project, rater=request.user):
                raise Http404 from None  # a closed project is not even acknowledged to outsiders
            raise _api_error(exc) from None


class SubmitView(APIView):
    @extend_schema(
        request=SubmitSerializer,
        responses={201: SubmitOut, 200: SubmitOut},
        summary="Submit labels and get the next assignment",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        body = parse(SubmitSerializer, request)
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
        return submit_response(
            name="annotation",
            answer=result.annotation,
            created=result.created,
            following=result.next,
            nothing=NoAssignment,
            payload=assignment_payload,
            extra=None if result.feedback is None else {"feedback": result.feedback},
        )


class SkipView(APIView):
    @extend_schema(
        request=SkipSerializer,
        responses={200: AssignmentOut, 204: NOTHING_LEFT},
        summary="Give an image back with a reason and get the next assignment",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = parse(SkipSerializer, request)["reason"]
        try:
            return _next_response(assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason))
        except AssignmentError as exc:
            raise _api_error(exc) from None


class ProjectSchemaView(APIView):
    @extend_schema(responses=SchemaOut, summary="The project's current annotation schema")
    def get(self, request: Request, slug: str) -> Response:
        project = _project(slug)
        if project_hidden_from(project=project, rater=request.user):
            raise Http404  # as the labeling page: a closed project is not even acknowledged to outsiders
        version = schema_version_current(project=project)
        return Response({"version": version.version, "schema": version.definition})
