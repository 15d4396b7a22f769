from django.db import migrations

# Every lease and every label updates an image row's counters. With room left in each page (fillfactor),
# PostgreSQL can update a row in place without touching its indexes when no indexed column changes
# (a "HOT" update), which is the case for label_count. Other databases have no such setting.
FILLFACTOR = 80


def leave_room(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE images_image SET (fillfactor = {FILLFACTOR})")


def fill_pages(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE images_image RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("images", "0002_link_images_to_projects"),
    ]

    operations = [
        # The foreign-key index on near_duplicate_of serves the near-duplicate filter on its own.
        migrations.RemoveIndex(model_name="image", name="image_project_neardup_idx"),
        migrations.RunPython(leave_room, fill_pages),
    ]
