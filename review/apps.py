from __future__ import annotations

from collections.abc import Sequence

from django.apps import AppConfig


def _captions_succeeded(image_ids: Sequence[int]) -> None:
    """A caption's words are evidence for its image's risk flags ("x-ray" tips a borderline
    image): combined with the stored image scores off the captioning path (the file is not
    analysed again), one message for a whole batch."""
    from review import tasks

    if len(image_ids) == 1:
        tasks.risk_flags_compute.delay(image_id=image_ids[0], reanalyse=False)
    else:
        tasks.risk_flags_compute_many.delay(image_ids=list(image_ids), reanalyse=False)


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        # review depends on routing, never the other way round: routing learns of review's
        # interest in new captions and reads risk flags only through these registrations.
        from django.db.backends.signals import connection_created

        from review import selectors
        from review.sql import register_sqlite_functions
        from routing import hooks

        connection_created.connect(register_sqlite_functions)

        hooks.on_captions_succeeded(_captions_succeeded)
        hooks.risk_source_register(
            hooks.RiskSource(
                flagged_q=selectors.image_flagged_q, signals=selectors.image_risk_signals
            )
        )
