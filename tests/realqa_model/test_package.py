"""Importing the model package stays cheap and never pulls in the web side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY_OR_FORBIDDEN = ("torch", "transformers", "django", "annotation_site", "workers", "celery")


@pytest.mark.parametrize("module", ["realqa_model", "realqa_model.numeric", "realqa_model.prompts"])
def test_importing_the_model_package_loads_neither_torch_nor_django(module: str) -> None:
    script = (
        "import sys\n"
        f"import {module}\n"
        f"loaded = sorted(name for name in {HEAVY_OR_FORBIDDEN!r} if name in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_score_helpers_work_without_torch_installed_in_the_process() -> None:
    script = (
        "import sys\n"
        "sys.modules['torch'] = None  # any 'import torch' now fails\n"
        "import realqa_model\n"
        "assert realqa_model.format_score(6.587) == '6.59'\n"
        "assert realqa_model.parse_score('The final score is <6.59>.') == 6.59\n"
        "assert realqa_model.digit_expectation([[0.0] * 6 + [1.0] + [0.0] * 3])[0] == 6.0\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
