from django.conf import settings


def test_tests_run_on_postgres_and_redis():
    assert "postgresql" in settings.DATABASES["default"]["ENGINE"]
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.DEBUG is False
