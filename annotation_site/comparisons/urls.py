"""Pages and rater API of pairwise comparisons; included at the site's root."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("projects/<slug:slug>/compare/", views.compare_page, name="compare"),
    path("staff/projects/<slug:slug>/comparisons/", views.scale_page, name="comparison-scale"),
    path("api/v1/projects/<slug:slug>/compare/next", api.NextPairView.as_view(), name="api-compare-next"),
    path("api/v1/projects/<slug:slug>/compare/scale", api.ScaleView.as_view(), name="api-compare-scale"),
    path("api/v1/pair-assignments/<int:assignment_id>/submit", api.SubmitPairView.as_view(), name="api-compare-submit"),
    path("api/v1/pair-assignments/<int:assignment_id>/skip", api.SkipPairView.as_view(), name="api-compare-skip"),
]
