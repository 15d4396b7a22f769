from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery


def mark_predictions_made_before_any_label(apps, schema_editor):  # type: ignore[no-untyped-def]
    """A prediction stored before its image's first label comes from a model that cannot have learnt
    from that image. Later ones stay unknown: the runs did not record what they were trained on."""
    Prediction = apps.get_model("predictions", "Prediction")
    Annotation = apps.get_model("labeling", "Annotation")
    first_label = Annotation.objects.filter(image=OuterRef("image")).order_by("created_at").values("created_at")[:1]
    Prediction.objects.filter(Q(image__label_count=0) | Q(created_at__lt=Subquery(first_label))).update(trained_on=False)


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0002_link_labels_to_images_raters_and_schemas"),
        ("predictions", "0002_add_features_model_runs_and_uncertainty"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="trained_on",
            field=models.BooleanField(
                help_text="Whether the model had learnt from this image's labels; empty where that is not known.", null=True
            ),
        ),
        migrations.RunPython(mark_predictions_made_before_any_label, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="prediction",
            index=models.Index(
                condition=models.Q(trained_on=False), fields=["image", "-created_at", "-id"], name="prediction_blind_newest_idx"
            ),
        ),
    ]
