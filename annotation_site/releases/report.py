"""The human side of a release: datasheet.md (the PNG plots are plots.py's)."""

from __future__ import annotations

import math
from pathlib import Path

from annotation_site.projects.models import Project
from annotation_site.schemas.spec import SchemaSpec

from . import tasks_export
from .fieldstats import FieldStats
from .plots import ALPHA_RELIABLE, ALPHA_TENTATIVE


# ------------------------------------------------------------------------------------------------ datasheet


def _num(value: object, places: int = 3) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:.{places}f}" if isinstance(value, float) else str(value)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _field_scale(spec) -> str:  # type: ignore[no-untyped-def]
    if spec.is_choice:
        return ", ".join(c.value + (" (n/a)" if c.not_applicable else "") for c in spec.choices)
    if spec.is_score:
        step = f", step {spec.step:g}" if spec.step else ""
        return f"{spec.min:g} to {spec.max:g}{step}"
    return f"free text (up to {spec.max_length} characters)"


def _reading(alpha: float | None) -> str:
    if alpha is None:
        return ""
    if alpha >= ALPHA_RELIABLE:
        return "reliable"
    if alpha >= ALPHA_TENTATIVE:
        return "tentative"
    return "unreliable"


def datasheet_write(
    path: Path,
    *,
    project: Project,
    spec: SchemaSpec,
    metadata: dict,
    agreement: dict,
    stats: list[FieldStats],
    rater_summary: dict,
    plots: list[str],
) -> None:
    counts = metadata["counts"]
    options = metadata["options"]
    conversations = metadata["conversations"]
    lines: list[str] = []
    add = lines.append
    add(f"# Datasheet: {metadata['release']}")
    add("")
    add(
        f"Release **{metadata['release']}** of project `{project.slug}` ({project.name}), version {metadata['version']}, "
        f"schema version {metadata['schema_version']} (digest `{metadata['schema_digest'][:16]}...`), created "
        f"{metadata['created_at']}. {counts['images']:,} images, {counts['labels']:,} labels from {counts['raters']:,} "
        "raters. Every file is listed with its sha256 in `MANIFEST.sha256` (`sha256sum -c MANIFEST.sha256`)."
    )
    add("")
    add("## Collection")
    add("")
    if project.description:
        add(project.description)
        add("")
    sources = ", ".join(f"{n:,} {name}" for name, n in sorted(counts.get("sources", {}).items())) or "none"
    add(
        f"Labels were given on the RealQA annotation platform between {metadata['labels_from'] or '-'} and "
        f"{metadata['labels_to'] or '-'} (by source: {sources}; `import` labels were collected elsewhere and imported). "
        f"Each image was to be labeled by {project.overlap} raters, up to {project.max_overlap} with adaptive overlap "
        f"(more raters while the 95% interval of the overall scores was wider than +/-{project.target_ci_half_width:g}). "
        f"Raters never saw each other's labels{'' if not project.pre_annotation else ' but did see the model guess (pre-annotation was on)'}. "
        f"Gold images with known answers were mixed in at a rate of {project.gold_rate:g} and a qualification round of "
        f"{project.qualification_size} gold images came first; gold images ({_plural(counts['gold_images'], 'image')}, "
        f"{_plural(counts['gold_labels_left_out'], 'label')}) are not part of the release."
    )
    if metadata["model_versions"]:
        add("")
        add(
            "Models whose predictions touched the project (pre-scoring and the order images were shown in): "
            + ", ".join(f"`{m}`" for m in metadata["model_versions"])
            + "."
        )
    add("")
    add("## Schema")
    add("")
    add("| field | label | level | kind | measurement | scale |")
    add("| --- | --- | --- | --- | --- | --- |")
    for f in spec.fields:
        reason = " (+ reason)" if f.reason is not None else ""
        add(f"| `{f.key}` | {f.label} | {f.level} | {f.kind}{reason} | {f.measurement or '-'} | {_field_scale(f)} |")
    add("")
    add("The full schema, with help texts and anchors shown to raters, is `schema.json`.")
    add("")
    add("## Raters and screening")
    add("")
    per = rater_summary["labels_per_rater"]
    gold = rater_summary["gold_accuracy_mean"]
    add(
        f"{rater_summary['raters']:,} raters contribute (labels per rater: min {per['min']:,}, median {per['median']:g}, "
        f"max {per['max']:,}). Raters are named by pseudonym only. Staff excluded {_plural(counts['excluded_raters'], 'rater')} "
        f"after quality control (gold accuracy, agreement with the leave-one-out consensus, straight-lining, speed, "
        f"ITU-R BT.500 screening); their {counts['excluded_raters_labels']:,} labels are left out of every file. "
        + (f"Mean gold accuracy of the {rater_summary['raters_with_gold']} raters who met gold images: {gold:.3f}. " if gold is not None else "")
        + "`raters.csv` has per rater: labels, gold accuracy, the Pearson correlation with the leave-one-out MOS and "
        "the bias against it per field, and per score field the MLE bias and inconsistency and the SD of the rater's "
        "ratings around the MOS (`_residual_sd`, there even when the MLE has no estimate)."
    )
    add("")
    add("## Agreement")
    add("")
    add(
        f"Krippendorff's alpha at each field's measurement level, with a percentile bootstrap 95% interval "
        f"({options['resamples']:,} resamples of images, seed {options['seed']}), and the split-half correlation "
        "of the MOS (random halves of each image's raters, Spearman-Brown corrected, mean over "
        f"{options['split_half_splits']} splits). Reading: >= {ALPHA_RELIABLE} reliable, >= {ALPHA_TENTATIVE} tentative, "
        "below that unreliable. \"undefined\" means there was no expected disagreement (every pairable value the "
        "same), not a number."
    )
    add("")
    add("| field | measurement | alpha | 95% interval | reading | units | raters | pairable values | split-half SRCC |")
    add("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for entry in agreement["fields"]:
        if entry["alpha_status"] == "not computed":
            add(f"| `{entry['key']}` | {entry['measurement'] or '-'} | not computed ({entry['alpha_note']}) | | | | | | |")
            continue
        interval = entry["alpha_ci95"]
        interval_text = f"{interval[0]:.3f} to {interval[1]:.3f}" if interval else "-"
        half = entry["split_half"]
        srcc = _num(half["srcc"]) if half else "-"
        add(
            f"| `{entry['key']}` | {entry['measurement']} | {_num(entry['alpha'])} | {interval_text} | "
            f"{_reading(entry['alpha'])} | {entry['units']:,} | {entry['raters']:,} | {entry['pairable_values']:,} | {srcc} |"
        )
    add("")
    add("## Scores")
    add("")
    add(
        "Per image and score field (`scores.csv`, `data/<split>.parquet`): `_n` ratings, `_mos` (two decimals), `_sd` "
        "(n - 1), `_ci95` the half-width of the 95% confidence interval of the MOS and `_ci_low`/`_ci_high`. The "
        "interval uses **Student's t**, t(0.975, n - 1) s / sqrt(n), not the 1.96 s / sqrt(n) the platform's adaptive "
        "overlap uses while collecting: with 3 to 10 ratings an image, 1.96 understates the interval (t = 2.78 at n = 5). "
        "`_zmos`: the mean of per-rater z-scores mapped onto the field's range (z = -3 to 3 onto min to max, clipped). "
        "`_mle`/`_mle_ci95`: the maximum-likelihood quality of ITU-T P.910 Annex E (the sureal MLE_CO model: rater bias "
        "and inconsistency), with its 1.96 interval from the Fisher information."
    )
    unfitted: dict[str, list[str]] = {}
    for s in stats:
        if s.field.is_score and s.mos is not None and not s.mle_fitted:
            unfitted.setdefault(s.mle_note, []).append(f"`{s.field.key}`")
    for note, keys in unfitted.items():
        add("")
        add(f"{', '.join(keys)}: {note}.")
    add("")
    add(
        "Choice fields: `_majority` (ties go to the choice listed first in the schema), its `_share`, `_count_<choice>` "
        "per choice and, for ordinal fields, `_mean_rank` (0-based rank of the on-scale choices). Text fields: "
        "`_answers`, the distinct answers (whitespace collapsed; answers differing only in case counted as one), most "
        "frequent first. One row per label, with the rater's pseudonym, is in `ratings.csv` / `ratings.parquet`."
    )
    add("")
    add("## Splits")
    add("")
    split_counts = ", ".join(f"{name} {n:,}" for name, n in counts["splits"].items())
    ratios = ", ".join(f"{name} {share:g}" for name, share in options["ratios"].items())
    kept = counts.get("splits_kept_from_previous", 0)
    stratified = (
        f"Splits are stratified by the MOS of `{options['score_field']}` (quantile bins)"
        if options["score_field"]
        else "Splits are not stratified (the schema has no score field)"
    )
    add(
        f"{split_counts} images (ratios {ratios}; seed {options['seed']}). {stratified} and near-duplicate images "
        "(perceptual hash) always share a split (`duplicate_group`). "
        + (
            f"{kept:,} images kept the split they had in {metadata['previous_release']}; an image's split never "
            "changes between releases of a project unless a release is made with reassign_splits."
            if kept
            else "No earlier split was kept (first release, or reassign_splits)."
        )
    )
    add("")
    lines.extend(tasks_export.datasheet_lines(metadata.get("tasks")))
    add("## Files and how to load them")
    add("")
    images = (
        "copied into `images/`, named by the sha256 of the original file"
        if metadata["images"] == "copy"
        else "referenced where the platform stores them (the `file` column holds the path on the platform's machine, or "
        "`s3://bucket/key` with an object store); not in this folder"
    )
    add(f"- Images: {images}.")
    add("- `scores.csv`, `data/<split>.parquet`: one row per image. `ratings.csv`, `ratings.parquet`: one row per label.")
    add(
        "- CSV files: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return (which a spreadsheet "
        "would run as a formula) starts with a single quote (`'`), as OWASP recommends against CSV injection; numbers "
        "are left as they are, and the Parquet files hold every text exactly as it was typed."
    )
    add(
        "- Hugging Face datasets: `load_dataset(\"parquet\", data_files={\"train\": \"data/train.parquet\", ...})`."
    )
    add("- `agreement.json`: alpha, interval, units, raters, pairable values and split-half per field. `raters.csv`.")
    if options["score_field"]:
        add(
            f"- `pyiqa/meta_info_{project.slug}.csv`: IQA-PyTorch's GeneralNRDataset with `dataroot_target` the "
            f"release folder, `meta_info_file` this CSV and `split_index: official_split`; `mos` is "
            f"`{options['score_field']}`."
        )
    if conversations.get("included", True) and "why" not in conversations:
        add(
            "- `conversations/`: LLaMA-Factory multimodal (sharegpt) training conversations per split, a plain "
            "answer and the chain-of-thought answer built from the attribute consensus; `dataset_info.json` registers "
            "them for LLaMA-Factory with the release folder as `dataset_dir`."
        )
    else:
        add(f"- Training conversations: **not included** ({conversations.get('why', 'not written')}).")
    add("- `release.json`: release id, version, schema version, counts, model versions, options. `schema.json`.")
    for plot in plots:
        add(f"- `{plot}`")
    add("")
    add("## Known limits")
    add("")
    add(
        "- Alpha says how far raters agree, not whether they are right; a field below 0.667 should not be trained on "
        "as ground truth per image."
    )
    add("- Choice and text consensus comes from a handful of raters per image; the `_share` column says how strong it is.")
    add(
        "- The chain-of-thought reasons are one rater's words (the rater whose score was closest to the consensus), "
        "not a summary of all raters."
    )
    add("- Near-duplicates are found by perceptual hash; crops or edits that change the hash a lot are not grouped.")
    add("- Raters were crowd or staff raters of this platform; their screens, eyesight and tastes were not controlled.")
    for note in metadata["notes"]:
        add(f"- {note}")
    add("")
    path.write_text("\n".join(lines), encoding="utf-8", errors="backslashreplace")
