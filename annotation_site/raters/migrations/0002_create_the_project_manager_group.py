"""The group "Project manager": staff in it may open every staff page and act there
(annotation_site/core/staffpages.py), and see and change the same objects in the admin, nothing more."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Project manager"
# The permissions the staff pages ask for, as annotation_site.core.staffpages.PROJECT_MANAGER_PERMISSIONS (a test
# keeps the two equal).
PERMISSIONS = [
    ("projects", "view_project"),
    ("projects", "change_project"),
    ("raters", "view_membership"),
    ("raters", "change_membership"),
    ("releases", "view_release"),
]


def create_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    using = schema_editor.connection.alias
    # Django makes permissions after migrate (post_migrate); on a fresh database there are none yet.
    for label in sorted({app for app, _ in PERMISSIONS}):
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, verbosity=0, interactive=False, using=using, apps=apps)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP)
    permissions = Permission.objects.using(using)
    group.permissions.set([permissions.get(content_type__app_label=app, codename=code) for app, code in PERMISSIONS])


def delete_group(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("raters", "0001_create_rater_profile_and_membership"),
        ("projects", "0004_describe_the_active_strategy_as_a_covering_batch"),
        ("releases", "0002_add_release_download_archive"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
