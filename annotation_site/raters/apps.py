from django.apps import AppConfig


class RatersConfig(AppConfig):
    name = "annotation_site.raters"
    label = "raters"
