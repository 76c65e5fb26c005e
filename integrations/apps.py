from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "API tokens and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401 - registers the schema extension
