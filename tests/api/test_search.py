"""Search finds images by what reviewers approved, what models said, file names and metadata,
best match first; the PostgreSQL index follows every change; SQLite falls back to substrings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.urls import reverse

from labeling import search
from review.models import ReviewItem
from review.services.items import review_items_sync
from routing.models import Caption
from tests.factories import CaptionFactory, ImageFactory


@pytest.fixture
def gallery(project):
    """Four images that mention a bicycle in different places, and one that does not."""
    approved = ImageFactory(project=project, original_name="IMG_0001.jpg")
    CaptionFactory(image=approved, text="A red bicycle leaning on a brick wall.")
    review_items_sync(project=project)
    ReviewItem.objects.filter(image=approved).update(
        state=ReviewItem.State.APPROVED, final_text="A red bicycle leaning on a brick wall."
    )
    model_only = ImageFactory(project=project, original_name="IMG_0002.jpg")
    CaptionFactory(image=model_only, text="Two bicycles parked by a canal at night.")
    named = ImageFactory(project=project, original_name="old-bicycle-shed.png")
    in_path = ImageFactory(
        project=project, original_name="IMG_0004.jpg", source_detail="/archive/bicycles/4.jpg"
    )
    other = ImageFactory(project=project, original_name="IMG_0005.jpg")
    CaptionFactory(image=other, text="A harbour with fishing boats.")
    return {
        "approved": approved,
        "model_only": model_only,
        "named": named,
        "in_path": in_path,
        "other": other,
    }


def _search(api, project, q, **params):
    response = api.get(reverse("api:image-search", args=[project.slug]), {"q": q, **params})
    assert response.status_code == 200, response.data
    return response.data


def test_approved_text_ranks_above_model_text_above_file_name_above_metadata(
    project, annotator, client_for, gallery
):
    data = _search(client_for(annotator), project, "bicycle")
    ids = [r["id"] for r in data["results"]]
    expected = ["approved", "model_only", "named", "in_path"]
    assert ids == [gallery[name].pk for name in expected]
    ranks = [r["rank"] for r in data["results"]]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]


def test_people_can_type_phrases_alternatives_and_exclusions(
    project, annotator, client_for, gallery
):
    api = client_for(annotator)
    names = {v.pk: k for k, v in gallery.items()}

    def found(q):
        return [names[r["id"]] for r in _search(api, project, q)["results"]]

    assert found('"red bicycle"') == ["approved"]
    assert found("bicycle -canal -shed -archive") == ["approved"]
    assert sorted(found("canal OR harbour")) == ["model_only", "other"]
    assert found("bicycles night") == ["model_only"]  # stemming: bicycles ~ bicycle
    assert found("the") == []  # only a stop word: nothing, not everything


def test_the_index_follows_captions_and_review_as_they_change(project, annotator, client_for):
    api = client_for(annotator)
    image = ImageFactory(project=project)
    caption = CaptionFactory(image=image, status=Caption.Status.PENDING, text="")
    assert _search(api, project, "lighthouse")["results"] == []

    Caption.objects.filter(pk=caption.pk).update(
        status=Caption.Status.SUCCEEDED, text="A lighthouse on a cliff."
    )
    first = _search(api, project, "lighthouse")["results"]
    assert [r["id"] for r in first] == [image.pk]

    review_items_sync(project=project)
    ReviewItem.objects.filter(caption=caption).update(
        state=ReviewItem.State.APPROVED, final_text="A white lighthouse on a cliff at dawn."
    )
    approved = _search(api, project, "lighthouse")["results"]
    assert approved[0]["rank"] > first[0]["rank"]
    assert [r["id"] for r in _search(api, project, "dawn")["results"]] == [image.pk]

    Caption.objects.filter(pk=caption.pk).delete()  # the review item goes with it
    assert _search(api, project, "lighthouse")["results"] == []


def test_search_pages_stay_stable_while_matches_arrive(project, annotator, client_for):
    api = client_for(annotator)
    originals = set()
    for i in range(7):
        image = ImageFactory(project=project, original_name=f"kite-{i}.jpg")
        CaptionFactory(image=image, text="A kite over a beach." + " kite" * (i % 3))
        originals.add(image.pk)
    page = _search(api, project, "kite", page_size=3)
    seen = [r["id"] for r in page["results"]]
    while page["next"]:
        late = ImageFactory(project=project)
        CaptionFactory(image=late, text="kite kite kite kite kite kite")  # ranks above all
        page = api.get(page["next"]).data
        seen += [r["id"] for r in page["results"]]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == originals


def test_a_narrow_query_is_ranked_and_counted(project, annotator, client_for, gallery):
    data = _search(client_for(annotator), project, "bicycle")
    assert data["order"] == "rank" and data["matches"] == 4
    assert all(r["rank"] is not None for r in data["results"])


def _kites(project, n):
    images = []
    for i in range(n):
        image = ImageFactory(project=project, original_name=f"kite-{i}.jpg")
        # Older images say it more often: ranked, the oldest would come first.
        CaptionFactory(image=image, text="A kite over a beach." + " kite" * (n - i))
        images.append(image)
    return images


def test_a_broad_query_is_newest_first_and_says_so(project, annotator, client_for, monkeypatch):
    """More matches than are ranked: newest first, no rank, no count; never a wrong ranking."""
    monkeypatch.setattr(search, "BROAD_MATCHES", 4)
    api = client_for(annotator)
    images = _kites(project, 7)
    ImageFactory(project=project, original_name="harbour.jpg")  # does not match
    page = _search(api, project, "kite", page_size=3)
    assert page["order"] == "newest" and page["matches"] is None
    assert [r["id"] for r in page["results"]] == [i.pk for i in images[::-1][:3]]
    assert all(r["rank"] is None for r in page["results"])
    seen = [r["id"] for r in page["results"]]
    while page["next"]:
        late = ImageFactory(project=project)
        CaptionFactory(image=late, text="kite kite kite kite kite kite kite kite kite")
        page = api.get(page["next"]).data
        assert page["order"] == "newest" and page["matches"] is None
        seen += [r["id"] for r in page["results"]]
    # Pages neither repeat nor skip, and what arrived after the first page is not slipped in.
    assert seen == [i.pk for i in images[::-1]]

    narrow = _search(api, project, "harbour")  # the same project, a query that is not broad
    assert narrow["order"] == "rank" and narrow["matches"] == 1


def test_a_ranked_query_stays_ranked_when_it_grows_broad_between_pages(
    project, annotator, client_for, monkeypatch
):
    monkeypatch.setattr(search, "BROAD_MATCHES", 4)
    api = client_for(annotator)
    images = _kites(project, 4)
    page = _search(api, project, "kite", page_size=2)
    assert page["order"] == "rank" and page["matches"] == 4
    seen = [r["id"] for r in page["results"]]
    for _ in range(3):
        CaptionFactory(image=ImageFactory(project=project), text="a kite")
    while page["next"]:
        page = api.get(page["next"]).data
        assert page["order"] == "rank"
        seen += [r["id"] for r in page["results"]]
    # Best first: the oldest says "kite" most. The later, weaker matches rank below the cursor.
    assert seen[:4] == [i.pk for i in images]
    assert len(seen) == len(set(seen)) == 7


def test_the_project_page_says_when_results_are_newest_first(
    client, annotator, project, monkeypatch
):
    monkeypatch.setattr(search, "BROAD_MATCHES", 4)
    monkeypatch.setattr("integrations.views.SEARCH_PAGE_SIZE", 3)
    images = _kites(project, 7)
    client.force_login(annotator)
    url = reverse("integrations:image-search", args=[project.slug])
    first = client.get(url, {"q": "kite"}).content.decode()
    assert "More than 4 images match" in first and 'id="search-broad"' in first
    names = [f"kite-{i}.jpg" for i in range(7)][::-1]
    assert first.index(names[0]) < first.index(names[1]) < first.index(names[2])
    assert names[3] not in first
    shown = []
    html = first
    while "Next →" in html:
        shown += [n for n in names if n in html]
        next_href = re.search(r'<a href="\?([^"]+)">Next →', html).group(1)
        html = client.get(url + "?" + next_href.replace("&amp;", "&")).content.decode()
        assert "First page" in html
    shown += [n for n in names if n in html]
    assert shown == names and len(images) == 7
    ImageFactory(project=project, original_name="harbour.jpg")
    ranked = client.get(url, {"q": "harbour"}).content.decode()
    assert "1 image match" in ranked and 'id="search-broad"' not in ranked
    mangled = client.get(url, {"q": "kite", "cursor": "nonsense"})
    assert mangled.status_code == 200 and "More than 4 images match" in mangled.content.decode()


def test_the_risk_question_answer_is_not_a_searchable_caption(project, annotator, client_for):
    """The risk analyser asks a model "chart, screenshot, medical or photo?"; its one-word answer
    says nothing a person searches for. Other questions' answers are captions like any."""
    from review.risk.captions import RISK_QUESTION

    api = client_for(annotator)
    asked = ImageFactory(project=project)
    CaptionFactory(image=asked, task="question", prompt=RISK_QUESTION, text="screenshot")
    other = ImageFactory(project=project)
    CaptionFactory(image=other, task="question", prompt="What is shown?", text="A screenshot.")
    assert [r["id"] for r in _search(api, project, "screenshot")["results"]] == [other.pk]
    # The migration copies the question: a new wording needs a migration that follows it.
    migration = __import__(
        "labeling.migrations.0006_search_skips_risk_question", fromlist=["RISK_QUESTION"]
    )
    assert migration.RISK_QUESTION == RISK_QUESTION


def test_a_forged_cursor_is_a_400_not_a_crash(project, annotator, client_for):
    api = client_for(annotator)
    for cursor in ["nonsense", "eyJyIjogIk5hTiIsICJpIjogMX0="]:  # the second: rank NaN
        response = api.get(
            reverse("api:image-search", args=[project.slug]), {"q": "x", "cursor": cursor}
        )
        assert response.status_code == 400


def test_another_projects_images_are_never_found(project, annotator, client_for, gallery):
    from tests.factories import ProjectFactory

    elsewhere = ImageFactory(project=ProjectFactory(), original_name="bicycle-elsewhere.jpg")
    ids = [r["id"] for r in _search(client_for(annotator), project, "bicycle")["results"]]
    assert elsewhere.pk not in ids


def test_the_project_page_search_box_shows_ranked_results(client, annotator, project, gallery):
    client.force_login(annotator)
    page = client.get(reverse("labeling:project-detail", args=[project.slug])).content.decode()
    assert reverse("integrations:image-search", args=[project.slug]) in page
    results = client.get(
        reverse("integrations:image-search", args=[project.slug]), {"q": "bicycle"}
    ).content.decode()
    assert "4 images match" in results
    assert results.index("IMG_0001.jpg") < results.index("IMG_0002.jpg")
    assert results.index("IMG_0002.jpg") < results.index("old-bicycle-shed.png")
    escaped = client.get(
        reverse("integrations:image-search", args=[project.slug]), {"q": "<script>x</script>"}
    ).content.decode()
    assert "<script>x</script>" not in escaped and "&lt;script&gt;" in escaped


def test_outsiders_cannot_search_a_project(client, outsider, project):
    client.force_login(outsider)
    url = reverse("integrations:image-search", args=[project.slug])
    assert client.get(url, {"q": "x"}).status_code == 404


def test_the_substring_fallback_needs_every_word(project, gallery, monkeypatch):
    monkeypatch.setattr(search, "search_is_full_text", lambda: False)
    found = search.image_search(project=project, query="red wall")
    assert list(found) == [gallery["approved"]]
    found = search.image_search(project=project, query="bicycle")
    assert list(found) == [gallery[k] for k in ("in_path", "named", "model_only", "approved")]


@pytest.mark.slow
def test_on_sqlite_the_migrations_apply_and_search_falls_back(tmp_path):
    """The embedded first-run database: no tsvector, no triggers, substring search works."""
    root = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        from labeling.models import Image, Project
        from labeling.search import image_search, search_is_full_text
        from routing.models import Caption
        p = Project.objects.create(name="P", slug="p")
        common = dict(project=p, phash=0, width=1, height=1, format="PNG", mode="RGB",
                      byte_size=1, source="upload")
        a = Image.objects.create(sha256="a", original_name="a.png", **common)
        b = Image.objects.create(sha256="b", original_name="b.png", **common)
        Caption.objects.create(image=a, status="succeeded", text="A Red Bicycle")
        assert not search_is_full_text()
        print([i.original_name for i in image_search(project=p, query="bicycle red")])
        """
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first-run.sqlite3'}",
        "CAPTIONDESK_VAR_DIR": str(tmp_path),
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "captiondesk.settings",
        "PYTHONPATH": str(root),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['a.png']"
