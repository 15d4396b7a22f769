from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation_site.core import views as core_views
from annotation_site.core.throttle import ThrottledAdminAuthenticationForm
from annotation_site.images import views as image_views
from annotation_site.labeling import views as labeling_views
from annotation_site.predictions import views as prediction_views
from annotation_site.quality import views as quality_views
from annotation_site.releases import views as release_views

admin.site.site_header = "RealQA annotation platform"
admin.site.site_title = "RealQA admin"
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("projects/<slug:slug>/label/", labeling_views.label_page, name="label"),
    path("staff/projects/<slug:slug>/raters/", quality_views.rater_quality_page, name="rater-quality"),
    path(
        "staff/projects/<slug:slug>/raters/<int:rater_id>/exclusion",
        quality_views.rater_exclusion,
        name="rater-exclusion",
    ),
    path("staff/projects/<slug:slug>/model/", prediction_views.model_page, name="model-page"),
    path("staff/projects/<slug:slug>/model/retrain", prediction_views.model_retrain, name="model-retrain"),
    path("staff/projects/<slug:slug>/dashboard/", release_views.dashboard_page, name="project-dashboard"),
    path(
        "staff/projects/<slug:slug>/dashboard/recompute",
        release_views.dashboard_recompute,
        name="project-dashboard-recompute",
    ),
    path("staff/projects/<slug:slug>/dashboard/job", release_views.dashboard_job, name="project-dashboard-job"),
    path("staff/releases/<int:pk>/download", release_views.release_download, name="release-download"),
    path("metrics", core_views.metrics, name="metrics"),
    # Every photo is checked against the user before a byte leaves (images/views.py); the proxy or the object
    # store only sends the bytes. MEDIA_URL must therefore be a path on this site.
    path(urlsplit(settings.MEDIA_URL).path.lstrip("/") + "<path:name>", image_views.media_file, name="media"),
    path("accounts/login/", core_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("annotation_site.labeling.urls")),
    path("", include("annotation_site.grounding.urls")),
    path("", include("annotation_site.comparisons.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from this site's static files; its start-up script from ?script, not inline (CSP script-src).
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
