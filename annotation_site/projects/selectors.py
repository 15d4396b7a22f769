"""Reads for projects."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from annotation_site.images.models import Image
from annotation_site.labeling.models import Annotation

from .models import Project


def _count(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("project").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def project_list_for_rater(*, rater: AbstractBaseUser) -> QuerySet[Project]:
    """Active projects with how many images each has and how many this rater has labeled."""
    return (
        Project.objects.filter(is_active=True)
        .annotate(
            image_count=_count(Image.objects.filter(project=OuterRef("pk"))),
            my_label_count=_count(Annotation.objects.filter(project=OuterRef("pk"), rater=rater)),
        )
        .order_by("name")
    )
