from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "annotation_site.images"
    label = "images"
