from django.apps import AppConfig


class AlliesConfig(AppConfig):
    name = "allies"
    default_auto_field = "django.db.models.BigAutoField"
