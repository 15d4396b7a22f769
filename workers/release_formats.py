"""Release files that need the model side: the LLaMA-Factory training conversations of the RealQA recipe.

annotation_site's release builder never imports realqa_model; it takes writers like this one from its caller
(`manage.py export_release` and the "releases.build" task always pass it). Per split it writes, in LLaMA-Factory's
multimodal sharegpt format ({"messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant",
"content": "..."}], "images": ["images/..."]}):

- conversations/<split>_plain.json: per image and overall score field, the score question and RealQA's plain
  answer ("The overall quality score of this image is 6.59.");
- conversations/<split>_cot.json: per image, RealQA's chain-of-thought question "with the regular form" and the
  numbered answer built from the attribute consensus (majority choices, rounded integer scores, the consensus
  text, the reasons of the rater closest to the consensus), ending "The final score is <6.59>." for the
  release's score field;

and dataset_info.json at the release root, which registers every file (dataset_dir = the release folder, so the
"images/..." paths resolve against it as LLaMA-Factory's media_dir defaults to dataset_dir).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from annotation_site.releases.builder import ImageConsensus, ReleaseContext
from realqa_model.prompts import answer_text, cot_answer, cot_question, field_question, prepare_schema

SHAREGPT = {
    "formatting": "sharegpt",
    "columns": {"messages": "messages", "images": "images"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
}


class _JsonArray:
    """A JSON array written one item at a time, so a split of any size never sits in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] = open(path, "w", encoding="utf-8")
        self.handle.write("[")
        self.count = 0

    def add(self, item: dict[str, Any]) -> None:
        self.handle.write(",\n" if self.count else "\n")
        self.handle.write(json.dumps(item, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.handle.write("\n]\n" if self.count else "]\n")
        self.handle.close()


def _conversation(question: str, answer: str, image: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "images": [image],
    }


class ConversationWriter:
    """The release writer named "conversations" (see annotation_site.releases.builder.ReleaseWriter)."""

    name = "conversations"

    def open(self, context: ReleaseContext) -> None:
        self.context = context
        self.schema = context.schema
        fields = {f["key"]: f for f in self.schema["fields"]}
        self.final_key = context.score_field
        self.notes: list[str] = []
        self.plain_fields = []
        for f in self.schema["fields"]:
            if f["level"] != "overall" or f["kind"] not in ("integer", "continuous"):
                continue
            try:  # RealQA's answer form holds scores from 0 to 10 only
                answer_text(f, f["max"])
                answer_text(f, f["min"])
            except ValueError as exc:
                self.notes.append(f"no plain answers for {f['key']}: {exc}")
                continue
            self.plain_fields.append(f)
        try:
            if self.final_key not in fields:
                raise ValueError("the schema has no score field for the final score")
            # Checked once here rather than on each of the images' cot_answer calls (which took most of its time)
            self.prepared = prepare_schema(self.schema)
            cot_answer(self.prepared, {}, {}, self.final_key, fields[self.final_key]["max"])
            self.cot = True
        except ValueError as exc:
            self.cot = False
            self.notes.append(f"no chain-of-thought answers: {exc}")
        self.questions = {f["key"]: field_question(f) for f in self.plain_fields}
        self.cot_question = cot_question(regular_form=True)
        folder = context.directory / "conversations"
        folder.mkdir(exist_ok=True)
        self.files: dict[tuple[str, str], _JsonArray] = {}
        for split in context.splits:
            self.files[(split, "plain")] = _JsonArray(folder / f"{split}_plain.json")
            if self.cot:
                self.files[(split, "cot")] = _JsonArray(folder / f"{split}_cot.json")
        self.without_reasons = 0
        self.skipped: list[str] = []

    def add(self, image: ImageConsensus) -> None:
        for f in self.plain_fields:
            score = image.scores.get(f["key"])
            if score is None:
                continue
            value = int(image.values[f["key"]]) if f["kind"] == "integer" else score
            self.files[(image.split, "plain")].add(
                _conversation(self.questions[f["key"]], answer_text(f, value), image.file)
            )
        final = image.scores.get(self.final_key)
        if not self.cot or final is None:
            return
        try:
            answer = cot_answer(self.prepared, image.values, image.reasons, self.final_key, final)
        except ValueError:
            # A reason that reads like an item of the template ("..., 2.1 Subject Integrity: ...") would garble
            # the parse; the answer without reasons is still a correct chain of thought.
            try:
                answer = cot_answer(self.prepared, image.values, {}, self.final_key, final)
                self.without_reasons += 1
            except ValueError as exc:
                self.skipped.append(f"{image.file}: {exc}")
                return
        self.files[(image.split, "cot")].add(_conversation(self.cot_question, answer, image.file))

    def close(self) -> dict:
        for handle in self.files.values():
            handle.close()
        slug = self.context.release_id.rsplit("-v", 1)[0]
        info = {
            f"{slug}_{split}_{kind}": {"file_name": f"conversations/{split}_{kind}.json", **SHAREGPT}
            for (split, kind) in self.files
        }
        (self.context.directory / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
        notes = list(self.notes)
        if self.without_reasons:
            notes.append(f"{self.without_reasons} chain-of-thought answers without reasons (a reason read like a template item)")
        if self.skipped:
            notes.append(f"{len(self.skipped)} images without a chain-of-thought answer, e.g. {self.skipped[0]}")
        return {
            "included": True,
            "format": "LLaMA-Factory multimodal sharegpt",
            "files": sorted(["dataset_info.json"] + [f"conversations/{s}_{k}.json" for (s, k) in self.files]),
            "counts": {f"{s}_{k}": h.count for (s, k), h in self.files.items()},
            "final_score_field": self.final_key,
            "plain_fields": [f["key"] for f in self.plain_fields],
            "notes": notes,
        }
