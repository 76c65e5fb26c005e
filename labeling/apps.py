from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image as PILImage

        # Pillow warns above this and refuses at twice it; ingestion makes the warning a refusal.
        PILImage.MAX_IMAGE_PIXELS = settings.INGEST_MAX_PIXELS
