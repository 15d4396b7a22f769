from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_save


def _count_stored_label(sender: type, instance: object, created: bool, **kwargs: object) -> None:
    if not created:
        return
    from .metrics import label_stored

    source = str(getattr(instance, "source", "") or "unknown")
    # Counted once the row is committed: a submit that rolls back (a conflict) stored nothing.
    transaction.on_commit(lambda: label_stored(source=source), using=kwargs.get("using"))


class CoreConfig(AppConfig):
    name = "annotation_site.core"
    label = "core"

    def ready(self) -> None:
        # A lazy sender ("app_label.Model"): core needs no import of the labeling app to count its labels.
        post_save.connect(_count_stored_label, sender="labeling.Annotation", dispatch_uid="realqa-count-stored-label")
