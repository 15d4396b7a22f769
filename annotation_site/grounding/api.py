"""The rater API of the region and description tasks: the same rules as their pages."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.core.parsers import SafeJSONField
from annotation_site.core.taskapi import (
    NOTHING_LEFT,
    ImageOut,
    NextIn,
    StrictSerializer,
    SubmitIn,
    next_response,
    parse,
    submit_response,
    task_error,
)
from annotation_site.projects.models import Project
from annotation_site.projects.selectors import project_hidden_from

from .models import GroundingLease, TaskKind
from .selectors import grounding_setup_payload, lease_payload
from .services import (
    AnswerConflict,
    GroundingInputError,
    LeaseClosed,
    LeaseNotFound,
    NoTask,
    SubmitResult,
    TaskClosed,
    TaskError,
    description_submit,
    grounding_task_next,
    grounding_task_skip,
    region_submit,
    setup_enabled,
)


class RegionSubmitIn(SubmitIn):
    # JSON as sent: the service checks it and names every bad entry ("boxes[2].tag": ...).
    boxes = SafeJSONField(help_text='[{"box": [x0, y0, x1, y1] (0..1 of the image), "tag": "blur", "note": "..."}]')
    answers = SafeJSONField(required=False, default=dict, help_text='Question key to "yes"/"no" or to a box index (null: none).')


class DescriptionSubmitIn(SubmitIn):
    brief = SafeJSONField(help_text='[{"distortion": "noise", "severity": "obvious"}]; [] for no distortion.')
    detail = SafeJSONField(required=False, default="", help_text="The detailed answer: free text.")


class GroundingSkipIn(StrictSerializer):
    reason = serializers.ChoiceField(choices=GroundingLease.SkipReason.choices)


class LeaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TaskKind.choices)
    expires_at = serializers.DateTimeField()
    image = ImageOut()


class AnswerSubmitOut(serializers.Serializer):
    answer = serializers.DictField(help_text='{"id": ..., "replayed": false}')
    next = LeaseOut(allow_null=True)
    next_reason = serializers.CharField(required=False, help_text="Why `next` is null: done, lease_limit, closed.")


class AnswerInvalidOut(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.CharField(), help_text='Place to problem, e.g. {"boxes[0].tag": "..."}')


def _task_project(slug: str, kind: str) -> Project:
    project = get_object_or_404(Project, slug=slug, is_active=True)
    if setup_enabled(project=project, kind=kind) is None:
        raise NotFound(f"project {slug!r} has no {kind} task")
    return project


def _api_error(exc: TaskError) -> APIException:
    return task_error(exc, not_found=LeaseNotFound, forbidden=TaskClosed, conflict=(LeaseClosed, AnswerConflict))


def _next_response(result: GroundingLease | NoTask) -> Response:
    return next_response(result, nothing=NoTask, payload=lease_payload)


def _submit_response(result: SubmitResult) -> Response:
    return submit_response(
        name="answer", answer=result.answer, created=result.created, following=result.next, nothing=NoTask, payload=lease_payload
    )


def _invalid(exc: GroundingInputError) -> Response:
    return Response({"detail": str(exc), "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)


class _NextView(APIView):
    kind: str = ""

    def post(self, request: Request, slug: str) -> Response:
        exclude = parse(NextIn, request)["exclude"]
        project = _task_project(slug, self.kind)
        if project_hidden_from(project=project, rater=request.user):
            raise Http404  # a closed project is not even acknowledged to outsiders
        try:
            return _next_response(grounding_task_next(project=project, rater=request.user, kind=self.kind, exclude=exclude))
        except TaskError as exc:
            raise _api_error(exc) from None


class RegionNextView(_NextView):
    kind = TaskKind.REGIONS

    @extend_schema(request=NextIn, responses={200: LeaseOut, 204: NOTHING_LEFT}, summary="The rater's next photo to draw regions on")
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)


class DescriptionNextView(_NextView):
    kind = TaskKind.DESCRIPTION

    @extend_schema(request=NextIn, responses={200: LeaseOut, 204: NOTHING_LEFT}, summary="The rater's next photo to describe")
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)


class RegionSubmitView(APIView):
    @extend_schema(
        request=RegionSubmitIn,
        responses={201: AnswerSubmitOut, 200: AnswerSubmitOut, 400: AnswerInvalidOut},
        summary="Submit boxes (and region answers) and get the next photo",
    )
    def post(self, request: Request, lease_id: int) -> Response:
        body = parse(RegionSubmitIn, request)
        try:
            result = region_submit(
                lease_id=lease_id,
                rater=request.user,
                boxes=body["boxes"],
                answers=body["answers"],
                idempotency_key=body.get("idempotency_key"),
                seconds_spent=body.get("seconds_spent"),
            )
        except GroundingInputError as exc:
            return _invalid(exc)
        except TaskError as exc:
            raise _api_error(exc) from None
        return _submit_response(result)


class DescriptionSubmitView(APIView):
    @extend_schema(
        request=DescriptionSubmitIn,
        responses={201: AnswerSubmitOut, 200: AnswerSubmitOut, 400: AnswerInvalidOut},
        summary="Submit a description and get the next photo",
    )
    def post(self, request: Request, lease_id: int) -> Response:
        body = parse(DescriptionSubmitIn, request)
        try:
            result = description_submit(
                lease_id=lease_id,
                rater=request.user,
                brief=body["brief"],
                detail=body["detail"],
                idempotency_key=body.get("idempotency_key"),
                seconds_spent=body.get("seconds_spent"),
            )
        except GroundingInputError as exc:
            return _invalid(exc)
        except TaskError as exc:
            raise _api_error(exc) from None
        return _submit_response(result)


class _SkipView(APIView):
    kind: str = ""

    def post(self, request: Request, lease_id: int) -> Response:
        reason = parse(GroundingSkipIn, request)["reason"]
        try:
            return _next_response(grounding_task_skip(lease_id=lease_id, rater=request.user, kind=self.kind, reason=reason))
        except TaskError as exc:
            raise _api_error(exc) from None


class RegionSkipView(_SkipView):
    kind = TaskKind.REGIONS

    @extend_schema(request=GroundingSkipIn, responses={200: LeaseOut, 204: NOTHING_LEFT}, summary="Give a photo back and get the next")
    def post(self, request: Request, lease_id: int) -> Response:
        return super().post(request, lease_id)


class DescriptionSkipView(_SkipView):
    kind = TaskKind.DESCRIPTION

    @extend_schema(request=GroundingSkipIn, responses={200: LeaseOut, 204: NOTHING_LEFT}, summary="Give a photo back and get the next")
    def post(self, request: Request, lease_id: int) -> Response:
        return super().post(request, lease_id)


class GroundingSetupView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The project's region and description task setups")
    def get(self, request: Request, slug: str) -> Response:
        project = get_object_or_404(Project, slug=slug, is_active=True)
        if project_hidden_from(project=project, rater=request.user):
            raise Http404
        return Response(grounding_setup_payload(project=project))
