from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "annotation_site.quality"
    label = "quality"
