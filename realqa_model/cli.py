"""``python -m realqa_model train|eval|score``: the cpu-multihead scorer from the command line.

    python -m realqa_model train --schema fixtures/realqa_schema.json --images photos/ --labels labels.csv --out model/
    python -m realqa_model eval  --model model/ --images photos/ --labels heldout.csv [--json]
    python -m realqa_model score --model model/ --images photos/ [--out predictions.jsonl]

``--images`` takes folders (searched recursively for images), image files, and CSV files listing image
paths (a column ``image`` or ``path``, else the first column; relative paths are relative to the CSV).
An image is named by its path relative to the folder it was found in, by its file name when given
directly, or as written in the list.

``--labels`` is a CSV with a header, in one of two shapes:

* long: columns ``image``, ``field``, ``value``; one row per consensus value;
* wide: a column ``image`` and one column per schema field; an empty cell is no label.

Choice fields take the choice's value (``good``, ``severely_under``), score fields a number. Text fields
are ignored. Every bad input stops the command with a message naming the file, the line and the field;
the exit status is 1 (2 for a malformed command line). Progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

__all__ = ["main"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"})


class CliError(Exception):
    """A bad input; the message is printed as it is."""


@dataclass(frozen=True)
class ImageRef:
    name: str  # how labels and predictions name the image
    path: Path


# --- inputs ---------------------------------------------------------------------------------------------


def collect_images(sources: Sequence[str]) -> list[ImageRef]:
    refs: list[ImageRef] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CliError(f"{path}: no image files in this folder")
            refs.extend(ImageRef(p.relative_to(path).as_posix(), p) for p in found)
        elif path.is_file() and path.suffix.lower() == ".csv":
            refs.extend(_image_list(path))
        elif path.is_file():
            refs.append(ImageRef(path.name, path))
        else:
            raise CliError(f"{path}: no such file or folder")
    names: dict[str, Path] = {}
    for ref in refs:
        if ref.name in names and names[ref.name] != ref.path:
            raise CliError(f"two images are both named {ref.name!r}: {names[ref.name]} and {ref.path}")
        names[ref.name] = ref.path
    unique = {ref.name: ref for ref in refs}
    return list(unique.values())


def _image_list(csv_path: Path) -> list[ImageRef]:
    rows = _read_csv(csv_path)
    if not rows:
        raise CliError(f"{csv_path}: empty image list")
    header = [cell.strip() for cell in rows[0]]
    named = [name for name in ("image", "path") if name in header]
    if named:  # a header row naming the column
        column, body, first_line = header.index(named[0]), rows[1:], 2
    else:  # no header: every row is a path, in the first column
        column, body, first_line = 0, rows, 1
    refs = []
    for number, row in enumerate(body, start=first_line):
        if not row or not any(cell.strip() for cell in row):
            continue
        if column >= len(row) or not row[column].strip():
            raise CliError(f"{csv_path}:{number}: no image path")
        name = row[column].strip()
        path = Path(name) if Path(name).is_absolute() else csv_path.parent / name
        if not path.is_file():
            raise CliError(f"{csv_path}:{number}: image {name!r} not found ({path})")
        refs.append(ImageRef(name, path))
    return refs


def _read_csv(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.reader(handle))
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"{path}: not a UTF-8 CSV file: {exc}") from exc


def load_schema(path: str) -> dict:
    from realqa_model.cpu_scorer import heads_from_schema

    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from exc
    try:
        heads_from_schema(schema)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from exc
    return schema


def load_labels(path: str, schema: dict, images: list[ImageRef]) -> dict[str, dict[str, Any]]:
    """image name -> {field key: value}, checked against the schema; errors name the file, line and field."""
    from realqa_model.cpu_scorer import LabelError, _label_value, heads_from_schema

    csv_path = Path(path)
    rows = _read_csv(csv_path)
    if not rows:
        raise CliError(f"{csv_path}: empty file (a header row is needed)")
    header = [cell.strip() for cell in rows[0]]
    heads = {head.key: head for head in heads_from_schema(schema)}
    text_keys = {f["key"] for f in schema["fields"] if f.get("kind") == "text"}
    by_name = {ref.name: ref for ref in images}
    if "image" not in header:
        raise CliError(f"{csv_path}:1: no 'image' column (long form: image,field,value; wide form: image,<field>,...)")
    long_form = {"field", "value"} <= set(header)
    if not long_form:
        for key in header:
            if key != "image" and key not in heads and key not in text_keys:
                raise CliError(f"{csv_path}:1: column {key!r} is not a field of the schema ({', '.join(heads)})")
        if len(set(header)) != len(header):
            raise CliError(f"{csv_path}:1: a column appears twice")
    labels: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], int] = {}

    def store(number: int, image: str, key: str, raw: str) -> None:
        if key in text_keys:
            return
        head = heads.get(key)
        if head is None:
            raise CliError(f"{csv_path}:{number}: field {key!r} is not in the schema ({', '.join(heads)})")
        raw = raw.strip()
        if not raw:
            return
        value: Any = raw
        if head.is_choice:
            # Choice values are usually strings; a schema with numeric values is matched by their text.
            value = next((choice for choice in head.choices if str(choice) == raw), raw)
        else:
            try:
                value = float(raw)
            except ValueError:
                raise CliError(f"{csv_path}:{number}: field {key!r}: {raw!r} is not a number") from None
        try:
            _label_value(head, value, "value")
        except LabelError as exc:
            raise CliError(f"{csv_path}:{number}: field {key!r}: {str(exc).removeprefix('value: ')}") from None
        if (image, key) in seen:
            first = seen[image, key]
            raise CliError(
                f"{csv_path}:{number}: a second value for image {image!r}, field {key!r} (first on line {first})"
            )
        seen[image, key] = number
        labels.setdefault(image, {})[key] = value

    column = {name: index for index, name in enumerate(header)}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        if len(row) > len(header):
            raise CliError(f"{csv_path}:{number}: {len(row)} cells but the header has {len(header)}")
        image = cells[column["image"]].strip()
        if not image:
            raise CliError(f"{csv_path}:{number}: empty image name")
        if image not in by_name:
            raise CliError(
                f"{csv_path}:{number}: image {image!r} is not among the {len(by_name)} images given by --images"
            )
        if long_form:
            store(number, image, cells[column["field"]].strip(), cells[column["value"]])
        else:
            labels.setdefault(image, {})
            for key, index in column.items():
                if key != "image":
                    store(number, image, key, cells[index])
    return labels


def _features(images: list[ImageRef], workers: int | None, what: str) -> np.ndarray:
    from realqa_model import features

    with tqdm(total=len(images), desc=what, unit="img", file=sys.stderr, disable=None) as bar:
        try:
            return features.extract_many([ref.path for ref in images], workers=workers, progress=bar.update)
        except features.FeatureError as exc:
            raise CliError(str(exc)) from exc


def _load_model(path: str) -> Any:
    from realqa_model import registry

    try:
        return registry.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"{path}: {exc}") from exc


def _labelled(images: list[ImageRef], labels: dict[str, dict[str, Any]]) -> list[ImageRef]:
    chosen = [ref for ref in images if labels.get(ref.name)]
    if not chosen:
        raise CliError("no image has a label")
    left_out = len(images) - len(chosen)
    if left_out:
        print(f"{left_out} of {len(images)} images have no label and are left out", file=sys.stderr)
    return chosen


# --- commands -------------------------------------------------------------------------------------------


def command_train(args: argparse.Namespace, out: TextIO) -> int:
    from realqa_model import cpu_scorer

    out_dir = Path(args.out)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not args.force)):
        raise CliError(f"{out_dir}: exists and is not an empty folder (use --force to overwrite a checkpoint)")
    overrides = {
        key: value
        for key, value in {
            "epochs": args.epochs,
            "ensemble_size": args.ensemble,
            "hidden_size": args.hidden,
            "seed": args.seed,
            "min_labels_per_field": args.min_labels,
        }.items()
        if value is not None
    }
    try:
        config = cpu_scorer.CpuScorerConfig(**overrides)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    schema = load_schema(args.schema)
    images = collect_images(args.images)
    labels = load_labels(args.labels, schema, images)
    chosen = _labelled(images, labels)
    matrix = _features(chosen, args.workers, "features")
    with tqdm(total=config.epochs, desc="training", unit="epoch", file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int, loss: float) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}")

        try:
            scorer = cpu_scorer.train(schema, matrix, [labels[ref.name] for ref in chosen], config, progress=progress)
        except cpu_scorer.LabelError as exc:
            raise CliError(f"{args.labels}: {exc}") from exc
    scorer.save(out_dir)
    summary = scorer.training_summary or {}
    print(
        f"saved {scorer.version} to {out_dir} ({len(chosen)} images, final loss {summary.get('final_loss')})", file=out
    )
    for key, entry in summary.get("fields", {}).items():
        state = "predicted" if entry["predicted"] else f"not predicted: {entry.get('reason')}"
        print(f"  {key:24} {entry['n']:>6} labels  {state}", file=out)
    return 0


def command_eval(args: argparse.Namespace, out: TextIO) -> int:
    from realqa_model import evaluation

    scorer = _load_model(args.model)
    if not getattr(scorer, "trained", True):
        raise CliError(f"{args.model}: the scorer has not been trained; there is nothing to evaluate")
    images = collect_images(args.images)
    labels = load_labels(args.labels, scorer.schema, images)
    chosen = _labelled(images, labels)
    matrix = _features(chosen, args.workers, "features")
    metrics = evaluation.evaluate(scorer, matrix, [labels[ref.name] for ref in chosen])
    if args.json:
        print(json.dumps(metrics, indent=1), file=out)
    else:
        print(evaluation.format_report(metrics), file=out)
    return 0


def command_score(args: argparse.Namespace, out: TextIO) -> int:
    from realqa_model import features

    scorer = _load_model(args.model)
    if not getattr(scorer, "trained", True):
        raise CliError(f"{args.model}: the scorer has not been trained; it has nothing to predict")
    images = collect_images(args.images)
    target = open(args.out, "w", encoding="utf-8") if args.out else out  # noqa: SIM115 - closed below
    failed = 0
    try:
        with tqdm(total=len(images), desc="scoring", unit="img", file=sys.stderr, disable=None) as bar:
            for start in range(0, len(images), args.batch_size):
                batch = images[start : start + args.batch_size]
                lines: list[dict[str, Any]] = []  # in input order; unreadable images get an error line
                vectors, readable = [], []
                for ref, result in zip(batch, _extract_each(batch, args.workers)):
                    if isinstance(result, features.FeatureError):
                        failed += 1
                        print(f"error: {result}", file=sys.stderr)
                        lines.append({"image": ref.name, "model_version": scorer.version, "error": str(result)})
                    else:
                        vectors.append(result)
                        readable.append(len(lines))
                        lines.append({"image": ref.name, "model_version": scorer.version})
                    bar.update(1)
                if vectors:
                    for position, prediction in zip(readable, scorer.score_features(np.stack(vectors))):
                        lines[position]["uncertainty"] = round(prediction.uncertainty, 6)
                        lines[position]["fields"] = prediction.values_json()
                        if args.embedding:
                            lines[position]["embedding"] = [round(v, 6) for v in prediction.embedding]
                for line in lines:
                    target.write(json.dumps(line) + "\n")
    finally:
        if target is not out:
            target.close()
    if failed:
        print(f"{failed} of {len(images)} images could not be read", file=sys.stderr)
        return 1
    return 0


def _extract_each(batch: list[ImageRef], workers: int | None) -> list[Any]:
    """Per image its feature vector, or the FeatureError that explains why it could not be read."""
    from realqa_model import features

    def one(ref: ImageRef) -> Any:
        try:
            return features.extract(ref.path)
        except features.FeatureError as exc:
            return exc

    if workers == 1 or len(batch) < 2:
        return [one(ref) for ref in batch]
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, batch))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m realqa_model", description="Train, evaluate and run the cpu-multihead scorer."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--images", nargs="+", required=True, help="folders, image files, or CSV lists of images")
        sub.add_argument("--workers", type=int, default=None, help="feature extraction threads (default: up to 4)")

    train = commands.add_parser("train", help="train a cpu-multihead scorer and save the checkpoint")
    train.add_argument("--schema", required=True, help="annotation schema JSON (e.g. fixtures/realqa_schema.json)")
    common(train)
    train.add_argument("--labels", required=True, help="labels CSV (long: image,field,value; or wide)")
    train.add_argument("--out", required=True, help="checkpoint folder to write")
    train.add_argument("--force", action="store_true", help="overwrite a non-empty --out folder")
    train.add_argument("--epochs", type=int)
    train.add_argument("--ensemble", type=int, help="ensemble members (default 5)")
    train.add_argument("--hidden", type=int, help="hidden layer width (default 64)")
    train.add_argument("--seed", type=int)
    train.add_argument("--min-labels", type=int, help="fewest labels a field needs to be predicted (default 5)")
    train.set_defaults(run=command_train)

    evaluate = commands.add_parser("eval", help="SRCC/PLCC/accuracy of a checkpoint against labels")
    evaluate.add_argument("--model", required=True, help="checkpoint folder")
    common(evaluate)
    evaluate.add_argument("--labels", required=True)
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.set_defaults(run=command_eval)

    score = commands.add_parser("score", help="predictions as JSON lines")
    score.add_argument("--model", required=True, help="checkpoint folder")
    common(score)
    score.add_argument("--out", help="JSON lines file to write (default: standard output)")
    score.add_argument("--batch-size", type=int, default=64)
    score.add_argument("--embedding", action="store_true", help="include each image's embedding")
    score.set_defaults(run=command_score)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    if getattr(args, "workers", None) is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if getattr(args, "batch_size", 1) < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.run(args, out))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
