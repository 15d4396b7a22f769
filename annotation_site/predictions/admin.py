from django.contrib import admin

from annotation_site.labeling.admin import ReadOnlyAdmin

from .models import Prediction


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "image", "model_version", "created_at"]
    list_filter = ["model_version"]
    list_select_related = ["image"]
