"""Writes for raters."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .models import RaterProfile


def rater_create(*, username: str, password: str | None, email: str = "", is_staff: bool = False) -> AbstractBaseUser:
    """A user with a rater profile (and so a pseudonym for releases)."""
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password, is_staff=is_staff)
        RaterProfile.objects.create(user=user)
    return user


def rater_profile_ensure(*, user: AbstractBaseUser) -> RaterProfile:
    """The user's rater profile, created on first use (admins and users made outside rater_create)."""
    profile, _ = RaterProfile.objects.get_or_create(user=user)
    return profile
