from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "annotation_site.predictions"
    label = "predictions"
