from django.apps import AppConfig


class KiboConfig(AppConfig):
    name = "kibo"
    verbose_name = "Kibo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from kibo import checks  # noqa: F401  (registers the database checks)
