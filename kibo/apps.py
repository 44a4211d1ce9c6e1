from django.apps import AppConfig


class KiboConfig(AppConfig):
    name = "kibo"
    verbose_name = "Kibo"
    default_auto_field = "django.db.models.BigAutoField"
