from django.conf import settings


def test_tests_run_on_postgres_and_redis():
    assert "postgresql" in settings.DATABASES["default"]["ENGINE"]
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.DEBUG is False


def test_every_periodic_task_is_a_registered_task_routed_to_a_served_queue():
    from captiondesk.celery import app

    app.loader.import_default_modules()
    queues = {"default", "api", "gpu"}
    assert settings.CELERY_BEAT_SCHEDULE, "the sweeps must run periodically"
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
        route = app.amqp.router.route({}, entry["task"])
        assert route["queue"].name in queues
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"routing.tasks.caption_sweep", "review.tasks.leases_expire"} <= names


def test_postgresql_connections_run_without_jit(db):
    # short queries with large cost estimates must not pay for compiling (see settings)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
