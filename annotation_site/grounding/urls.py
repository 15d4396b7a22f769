"""Pages and rater API of the region and description tasks; included at the site's root."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("projects/<slug:slug>/regions/", views.regions_page, name="regions"),
    path("projects/<slug:slug>/describe/", views.describe_page, name="describe"),
    path("api/v1/projects/<slug:slug>/grounding", api.GroundingSetupView.as_view(), name="api-grounding-setup"),
    path("api/v1/projects/<slug:slug>/regions/next", api.RegionNextView.as_view(), name="api-regions-next"),
    path("api/v1/projects/<slug:slug>/descriptions/next", api.DescriptionNextView.as_view(), name="api-descriptions-next"),
    path("api/v1/region-leases/<int:lease_id>/submit", api.RegionSubmitView.as_view(), name="api-regions-submit"),
    path("api/v1/region-leases/<int:lease_id>/skip", api.RegionSkipView.as_view(), name="api-regions-skip"),
    path("api/v1/description-leases/<int:lease_id>/submit", api.DescriptionSubmitView.as_view(), name="api-descriptions-submit"),
    path("api/v1/description-leases/<int:lease_id>/skip", api.DescriptionSkipView.as_view(), name="api-descriptions-skip"),
]
