from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "API tokens and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401 - registers the schema extension
        from integrations.services import webhooks
        from routing import hooks

        # routing announces its runs' events without knowing who listens
        hooks.on_run_event(webhooks.run_event_send)
