from django.db import migrations

# The pick of the next image (annotation_site/labeling/assignments.py) as a PostgreSQL function, so that
# its plan no longer depends on the planner's statistics. Without them (a table bulk-loaded minutes ago,
# a new project that ANALYZE has not seen yet) the planner takes the project for a few rows, reads all of
# its images, joins each to the rater's assignments and sorts them: 170 ms a pick at 10,000 images, and
# growing with the project. The plan wanted walks image_assignment_order_idx in its order and stops at the
# first image with room that the rater has not seen: 0.1 ms at any size. A function's SET clause holds
# only while it runs, so `enable_sort = off` leaves the index walk as the one way to return the rows in
# order without touching any other query; OFFSET 0 keeps NOT EXISTS a per-row probe of the unique
# (image, rater) index instead of an anti join that reads all the rater's assignments for every image.
# PL/pgSQL keeps the plan for the connection, so a pick is planned once, not once a label.
CREATE_PICK = """
CREATE OR REPLACE FUNCTION labeling_pick_image(p_project bigint, p_rater bigint, p_overlap integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET enable_sort = off
AS $$
DECLARE
    picked bigint;
BEGIN
    SELECT i.id INTO picked FROM images_image i
    WHERE i.project_id = p_project AND NOT i.is_gold
      AND (i.assigned_count < p_overlap OR i.assigned_count < i.wanted_count)
      AND NOT EXISTS (
          SELECT 1 FROM labeling_assignment a WHERE a.image_id = i.id AND a.rater_id = p_rater OFFSET 0
      )
    ORDER BY i.priority DESC, i.assigned_count, i.id
    LIMIT 1
    FOR UPDATE OF i SKIP LOCKED;
    RETURN picked;
END
$$
"""
DROP_PICK = "DROP FUNCTION IF EXISTS labeling_pick_image(bigint, bigint, integer)"


def create_pick(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_PICK)


def drop_pick(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_PICK)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0002_link_labels_to_images_raters_and_schemas"),
        ("images", "0004_add_priority_reason"),
    ]

    operations = [migrations.RunPython(create_pick, drop_pick)]
