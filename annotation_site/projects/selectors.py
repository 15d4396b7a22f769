"""Reads for projects."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotation_site.images.models import Image

from .models import Project


def _count(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("project").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def project_list_for_rater(*, rater: AbstractBaseUser) -> QuerySet[Project]:
    """Active projects the rater may label in, with how many (non-gold) images each has."""
    visible = Q(open_to_all_raters=True) | Q(memberships__rater=rater)
    return (
        Project.objects.filter(visible, is_active=True)
        .distinct()
        .select_related("current_schema")
        .annotate(image_count=_count(Image.objects.filter(project=OuterRef("pk"), is_gold=False)))
        .order_by("name")
    )


def project_hidden_from(*, project: Project, rater: AbstractBaseUser) -> bool:
    """A closed project is not even acknowledged to a rater outside it: its pages and API answer 404."""
    return not project.open_to_all_raters and not project.memberships.filter(rater=rater).exists()
