from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "API tokens and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import schema  # noqa: F401 - registers the schema extension
        from integrations.services import webhooks
        from labeling import hooks as labeling_hooks
        from routing import hooks as routing_hooks

        # routing and labeling announce their events without knowing who listens
        routing_hooks.on_run_event(webhooks.run_event_send)
        labeling_hooks.on_export_ready(webhooks.export_ready_send)
