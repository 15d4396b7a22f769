"""The rater API of pairwise comparisons: the same rules as the comparison page, for scripts and other clients."""

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

from annotation_site.labeling.api import Conflict, ImageOut, StrictSerializer
from annotation_site.projects.models import Project

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

MAX_CLIENT_INFO_CHARS = 2000


class PairNextIn(StrictSerializer):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10,
        help_text="Pair assignment ids the client already shows; asking with the current one gets the one to prefetch.",
    )


class PairSubmitIn(StrictSerializer):
    level = serializers.ChoiceField(
        choices=Level.choices, help_text="How the right (second) photo compares with the left (first) one."
    )
    idempotency_key = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=False)
    seconds_spent = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=86400)
    client = serializers.DictField(required=False, default=dict, help_text="Client details (screen size, user agent).")

    def validate_client(self, value: dict) -> dict:
        if len(json.dumps(value)) > MAX_CLIENT_INFO_CHARS:
            raise ValidationError(f"at most {MAX_CLIENT_INFO_CHARS} characters of JSON")
        return value


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


_NOTHING_LEFT = OpenApiResponse(description="Nothing to compare now; the X-RealQA-Reason header says why")


def _parse(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["expected a JSON object"]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _payload(assignment: PairAssignment) -> dict:
    setup = comparison_setup_get(project=assignment.project)
    return pair_assignment_payload(assignment, criterion=setup.criterion if setup else "quality")


def _next_response(result: PairAssignment | NoPair) -> Response:
    if isinstance(result, NoPair):
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"X-RealQA-Reason": result.reason})
    return Response(_payload(result))


def _api_error(exc: Exception) -> APIException:
    if isinstance(exc, LeaseNotFound):
        return NotFound(str(exc))
    if isinstance(exc, TaskClosed):
        return PermissionDenied(str(exc))
    if isinstance(exc, (LeaseClosed, AnswerConflict)):
        return Conflict(str(exc))
    if isinstance(exc, ComparisonInputError):
        return ValidationError(exc.errors)
    return ValidationError({"non_field_errors": [str(exc)]})


class NextPairView(APIView):
    @extend_schema(request=PairNextIn, responses={200: PairOut, 204: _NOTHING_LEFT}, summary="The rater's next pair")
    def post(self, request: Request, slug: str) -> Response:
        exclude = _parse(PairNextIn, request)["exclude"]
        project = get_object_or_404(Project, slug=slug, is_active=True)
        try:
            return _next_response(pair_assignment_next(project=project, rater=request.user, exclude=exclude))
        except TaskClosed as exc:
            if not project.open_to_all_raters and not project.memberships.filter(rater=request.user).exists():
                raise Http404 from None  # a closed project is not even acknowledged to outsiders
            raise _api_error(exc) from None


class SubmitPairView(APIView):
    @extend_schema(
        request=PairSubmitIn, responses={201: PairSubmitOut, 200: PairSubmitOut}, summary="Answer a pair and get the next one"
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        body = _parse(PairSubmitIn, request)
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
        payload: dict = {
            "comparison": {"id": result.comparison.pk, "replayed": not result.created},
            "next": None if isinstance(result.next, NoPair) else _payload(result.next),
        }
        if isinstance(result.next, NoPair):
            payload["next_reason"] = result.next.reason
        return Response(payload, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SkipPairView(APIView):
    @extend_schema(
        request=PairSkipIn, responses={200: PairOut, 204: _NOTHING_LEFT}, summary="Give a pair back with a reason"
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = _parse(PairSkipIn, request)["reason"]
        try:
            return _next_response(pair_assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason))
        except (TaskError, ComparisonInputError) as exc:
            raise _api_error(exc) from None


class ScaleView(APIView):
    @extend_schema(responses=PairScaleOut, summary="The scale inferred from the comparisons (staff only)")
    def get(self, request: Request, slug: str) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
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
