"""A worker keeps its database connection from one task to the next (CONN_MAX_AGE), and drops
it when it is too old, like Django between requests."""

from __future__ import annotations

import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connection

from captiondesk.celery import app


class _Request:
    is_eager = False


class _Task:
    request = _Request()


@pytest.fixture
def autocommit_connection(django_db_blocker):
    with django_db_blocker.unblock():
        connection.ensure_connection()
        yield connection
        connection.close()


def _task_boundary():
    task_prerun.send(sender=_Task, task=_Task())
    task_postrun.send(sender=_Task, task=_Task())


def test_celery_no_longer_closes_connections_around_every_task():
    assert app.conf.get("CELERY_DB_REUSE_MAX", 0) > 10**6


def test_the_connection_survives_a_task_boundary(autocommit_connection):
    raw = autocommit_connection.connection
    _task_boundary()
    assert autocommit_connection.connection is raw


def test_an_old_connection_is_dropped_at_a_task_boundary(autocommit_connection):
    autocommit_connection.close_at = 0  # older than CONN_MAX_AGE
    _task_boundary()
    assert autocommit_connection.connection is None


def test_an_eager_task_leaves_the_connection_alone(autocommit_connection):
    class Eager(_Task):
        request = type("R", (), {"is_eager": True})()

    autocommit_connection.close_at = 0
    task_prerun.send(sender=Eager, task=Eager())
    assert autocommit_connection.connection is not None
