"""The rater API of pairwise comparisons: the same rules as the comparison page, for scripts and other clients."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.core.staffpages import permission_refused_message
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

from .models import Level, PairAssignment
from .selectors import comparison_scale_fit, comparison_setup_get, pair_assignment_payload
from .services import (
    AnswerConflict,
    ComparisonInputError,
    LeaseClosed,
    LeaseNotFound,
    NoPair,
    TaskClosed,
    TaskError,
    pair_assignment_next,
    pair_assignment_skip,
    pair_assignment_submit,
)


class PairSubmitIn(SubmitWithClientIn):
    level = serializers.ChoiceField(
        choices=Level.choices, help_text="How the right (second) photo compares with the left (first) one."
    )


class PairSkipIn(StrictSerializer):
    reason = serializers.ChoiceField(choices=PairAssignment.SkipReason.choices)


class PairOut(serializers.Serializer):
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    criterion = serializers.ChoiceField(choices=["quality", "aesthetics"])
    question = serializers.CharField()
    levels = serializers.ListField(child=serializers.CharField())
    left = ImageOut()
    right = ImageOut()


class PairSubmitOut(serializers.Serializer):
    comparison = serializers.DictField(help_text='{"id": ..., "replayed": false}')
    next = PairOut(allow_null=True)
    next_reason = serializers.CharField(required=False, help_text="Why `next` is null: done, lease_limit, closed.")


class PairScaleRowOut(serializers.Serializer):
    image_id = serializers.IntegerField()
    score = serializers.FloatField()
    ci_low = serializers.FloatField()
    ci_high = serializers.FloatField()
    n_comparisons = serializers.IntegerField()


class PairScaleOut(serializers.Serializer):
    unit = serializers.ChoiceField(choices=["mos", "latent"])
    model = serializers.CharField()
    confidence = serializers.FloatField()
    comparisons = serializers.IntegerField()
    images_with_mos = serializers.IntegerField()
    note = serializers.CharField()
    rows = PairScaleRowOut(many=True)


def _payload(assignment: PairAssignment) -> dict:
    setup = comparison_setup_get(project=assignment.project)
    return pair_assignment_payload(assignment, criterion=setup.criterion if setup else "quality")


def _next_response(result: PairAssignment | NoPair) -> Response:
    return next_response(result, nothing=NoPair, payload=_payload)


def _api_error(exc: Exception) -> APIException:
    if isinstance(exc, ComparisonInputError):
        return ValidationError(exc.errors)
    return task_error(exc, not_found=LeaseNotFound, forbidden=TaskClosed, conflict=(LeaseClosed, AnswerConflict))


class NextPairView(APIView):
    @extend_schema(request=NextIn, responses={200: PairOut, 204: NOTHING_LEFT}, summary="The rater's next pair")
    def post(self, request: Request, slug: str) -> Response:
        exclude = parse(NextIn, request)["exclude"]
        project = get_object_or_404(Project, slug=slug, is_active=True)
        try:
            return _next_response(pair_assignment_next(project=project, rater=request.user, exclude=exclude))
        except TaskClosed as exc:
            if project_hidden_from(project=project, rater=request.user):
                raise Http404 from None  # a closed project is not even acknowledged to outsiders
            raise _api_error(exc) from None


class SubmitPairView(APIView):
    @extend_schema(
        request=PairSubmitIn, responses={201: PairSubmitOut, 200: PairSubmitOut}, summary="Answer a pair and get the next one"
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        body = parse(PairSubmitIn, request)
        try:
            result = pair_assignment_submit(
                assignment_id=assignment_id,
                rater=request.user,
                level=body["level"],
                idempotency_key=body.get("idempotency_key"),
                seconds_spent=body.get("seconds_spent"),
                client_info=body["client"],
            )
        except (TaskError, ComparisonInputError) as exc:
            raise _api_error(exc) from None
        return submit_response(
            name="comparison",
            answer=result.comparison,
            created=result.created,
            following=result.next,
            nothing=NoPair,
            payload=_payload,
        )


class SkipPairView(APIView):
    @extend_schema(
        request=PairSkipIn, responses={200: PairOut, 204: NOTHING_LEFT}, summary="Give a pair back with a reason"
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = parse(PairSkipIn, request)["reason"]
        try:
            return _next_response(pair_assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason))
        except (TaskError, ComparisonInputError) as exc:
            raise _api_error(exc) from None


class ScaleView(APIView):
    @extend_schema(responses=PairScaleOut, summary="The scale inferred from the comparisons (staff with projects.view_project)")
    def get(self, request: Request, slug: str) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        if not request.user.has_perm("projects.view_project"):  # as the staff page of the scale
            raise PermissionDenied(permission_refused_message("projects.view_project"))
        project = get_object_or_404(Project, slug=slug)
        fit = comparison_scale_fit(project=project)
        return Response(
            {
                "unit": fit.unit,
                "model": fit.model,
                "confidence": fit.confidence,
                "comparisons": fit.comparisons,
                "images_with_mos": fit.images_with_mos,
                "note": fit.note,
                "rows": [row.__dict__ for row in fit.rows],
            }
        )
