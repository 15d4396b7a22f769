from django import forms

from annotation_site.projects.models import Project


class ModelSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["priority_strategy", "pre_annotation", "retrain_min_new_labels"]
        labels = {"pre_annotation": "Show raters the model's guess (pre-annotation)"}
