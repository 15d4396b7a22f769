"""Celery workers: the only place where the web platform meets the model (`realqa_model`)."""

from .celery import app

__all__ = ["app"]
