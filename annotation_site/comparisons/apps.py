from django.apps import AppConfig


class ComparisonsConfig(AppConfig):
    name = "annotation_site.comparisons"
    label = "comparisons"
    verbose_name = "Pairwise comparisons"
