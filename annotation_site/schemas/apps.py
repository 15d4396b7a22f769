from django.apps import AppConfig


class SchemasConfig(AppConfig):
    name = "annotation_site.schemas"
    label = "schemas"
