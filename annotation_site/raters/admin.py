from django.contrib import admin

from .models import Membership, RaterProfile


@admin.register(RaterProfile)
class RaterProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "pseudonym", "created_at"]
    search_fields = ["user__username", "pseudonym"]
    readonly_fields = ["pseudonym", "created_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["rater", "project", "status", "qualification_answered", "qualified_at", "excluded_at"]
    list_filter = ["project", "status"]
    search_fields = ["rater__username"]
    readonly_fields = ["qualification_answered", "qualification_score", "qualified_at", "excluded_at", "excluded_by", "created_at"]
