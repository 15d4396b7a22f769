"""The RealQA model side: prompts, score text and (later) the PyTorch/transformers code.

Pure PyTorch/transformers, never Django: nothing here imports ``django``, ``annotation_site``
or ``workers``. Importing the package is cheap: it loads only the pure-Python score helpers;
submodules that need torch, transformers or numpy import them themselves, lazily.

    >>> import realqa_model
    >>> realqa_model.format_score(6.587)
    '6.59'
    >>> realqa_model.parse_score("The final score is <6.59>.")
    6.59
"""

from __future__ import annotations

from realqa_model.numeric import digit_expectation, format_score, parse_score

__all__ = ["digit_expectation", "format_score", "parse_score"]
