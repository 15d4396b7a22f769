from django.urls import path

from . import api

urlpatterns = [
    path("projects/<slug:slug>/next", api.NextAssignmentView.as_view(), name="api-next"),
    path("projects/<slug:slug>/schema", api.ProjectSchemaView.as_view(), name="api-schema-of-project"),
    path("assignments/<int:assignment_id>/submit", api.SubmitView.as_view(), name="api-submit"),
    path("assignments/<int:assignment_id>/skip", api.SkipView.as_view(), name="api-skip"),
]
