"""Valid label sets for the schemas used in tests."""

REALQA_LABELS = {
    "clarity": "good",
    "exposure": "well",
    "saturation": "natural",
    "subject_background": "Subject: a cat; background: a sofa",
    "subject_integrity": "complete",
    "subject_clutter": "uncluttered",
    "background_clutter": "cluttered",
    "level_shot": "level",
    "eye_catching": {"value": 7, "reason": "The cat's eyes meet the camera."},
    "composition": {"value": 6, "reason": "Centred subject, a little tight at the top."},
    "quality": 6.8,
    "aesthetics": 6.1,
}
