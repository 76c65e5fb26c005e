"""Many reviewers at once on real PostgreSQL: nothing is leased twice, nothing is reviewed twice."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict

import pytest
from django.db import connection
from django.db.models import Count

from review import selectors
from review.models import Lease, ReviewItem, Verdict
from review.services import queue
from review.services.verdict import verdict_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 20
REVIEWERS = 10  # two threads per reviewer: the same person in two tabs
ITEMS = 200
RISKY = 40


@pytest.mark.parametrize("use_sql", [True, False], ids=["sql", "orm"])
def test_twenty_threads_claim_and_submit_across_two_hundred_items(
    project, make_items, make_reviewers, monkeypatch, use_sql
):
    monkeypatch.setattr(queue, "USE_SQL", use_sql)
    items = make_items(project, ITEMS - RISKY) + make_items(project, RISKY, risky=True)
    reviewers = make_reviewers(project, REVIEWERS)
    required_total = sum(item.required for item in items)
    assert required_total == ITEMS + RISKY

    handed_out: dict[int, set[int]] = defaultdict(set)  # lease id -> reviewers it was given to
    errors: list[BaseException] = []
    count_samples: list[tuple[int, int, int]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def review(reviewer, seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                lease = queue.lease_claim_next(project=project, reviewer=reviewer)
                if lease is None:
                    counts = selectors.queue_counts(project=project)
                    if counts.to_review == 0 and counts.in_progress == 0:
                        return
                    time.sleep(0.02)  # others may still skip something this reviewer can take
                    continue
                with lock:
                    handed_out[lease.pk].add(reviewer.pk)
                roll = rng.random()
                kwargs: dict = {"decision": "accept"}
                if roll < 0.05:
                    kwargs = {"decision": "skip", "reasons": ["unsure"]}
                elif roll < 0.15:
                    kwargs = {"decision": "edit", "text": f"Edited by {reviewer.pk} ({seed})."}
                elif roll < 0.20:
                    kwargs = {"decision": "reject", "reasons": ["wrong_count"]}
                key = uuid.uuid4()
                verdict_submit(lease=lease, reviewer=reviewer, idempotency_key=key, **kwargs)
                if rng.random() < 0.1:  # a retry after a "network error"
                    verdict_submit(lease=lease, reviewer=reviewer, idempotency_key=key, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    def monitor() -> None:
        try:
            while not stop.is_set():
                c = selectors.queue_counts(project=project)
                count_samples.append((c.to_review, c.in_progress, c.done))
                time.sleep(0.01)
        finally:
            connection.close()

    watcher = threading.Thread(target=monitor)
    watcher.start()
    threads = [
        threading.Thread(target=review, args=(reviewers[i % REVIEWERS], i)) for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()

    assert not errors, errors
    # Every item ends with exactly the reviews its policy requires, and is decided.
    counted = dict(
        Verdict.objects.exclude(decision="skip")
        .values("item")
        .annotate(n=Count("id"))
        .values_list("item", "n")
    )
    for item in ReviewItem.objects.filter(project=project):
        assert counted.get(item.pk, 0) == item.required == item.reviews_done, item.pk
        assert item.state != ReviewItem.State.OPEN
    # Nobody reviewed (or skipped) an item twice.
    pairs = Verdict.objects.values_list("item", "reviewer")
    assert len(pairs) == len(set(pairs))
    # No lease went to two reviewers, and no item ever had more live leases than slots.
    assert all(len(who) == 1 for who in handed_out.values())
    for item in ReviewItem.objects.filter(project=project):
        events = []
        for lease in Lease.objects.filter(item=item):
            assert lease.ended_at is not None and lease.state != Lease.State.ACTIVE
            events += [(lease.created_at, 1), (lease.ended_at, -1)]
        live = peak = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            live += step
            peak = max(peak, live)
        assert peak <= item.required, item.pk
    # The counts stayed consistent while everything ran, and end at "all done".
    assert count_samples
    assert all(sum(sample) == required_total for sample in count_samples)
    final = selectors.queue_counts(project=project)
    assert (final.to_review, final.in_progress, final.done) == (0, 0, required_total)
