from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "annotation_site.releases"
    label = "releases"
    verbose_name = "Releases"
