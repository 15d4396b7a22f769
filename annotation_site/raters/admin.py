from django.contrib import admin

from .models import RaterProfile


@admin.register(RaterProfile)
class RaterProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "pseudonym", "is_excluded", "created_at"]
    list_filter = ["is_excluded"]
    search_fields = ["user__username", "pseudonym"]
    readonly_fields = ["pseudonym", "created_at", "excluded_at"]
