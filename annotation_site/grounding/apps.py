from django.apps import AppConfig


class GroundingConfig(AppConfig):
    name = "annotation_site.grounding"
    label = "grounding"
    verbose_name = "Regions and descriptions"
