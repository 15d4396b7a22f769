from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "annotation_site.projects"
    label = "projects"
