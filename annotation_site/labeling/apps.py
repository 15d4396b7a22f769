from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "annotation_site.labeling"
    label = "labeling"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from annotation_site.raters.models import Membership

        from .assignments import membership_forget

        def forget(sender: type, instance: Membership, **kwargs: object) -> None:
            # Any change of a membership (exclusion, the admin's edit or delete) is seen at once in this process.
            membership_forget(project_id=instance.project_id, rater_id=instance.rater_id)

        post_save.connect(forget, sender=Membership, weak=False, dispatch_uid="labeling-membership-forget-on-save")
        post_delete.connect(forget, sender=Membership, weak=False, dispatch_uid="labeling-membership-forget-on-delete")
