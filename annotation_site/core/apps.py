from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "annotation_site.core"
    label = "core"
