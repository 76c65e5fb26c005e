"""An admin's correction of a risk flag counts over the analyser in caption runs, as it does in
the review queue: in the image selection and in the chain rules."""

from __future__ import annotations

from review.models import RiskCorrection, RiskFlag
from routing.models import CaptionRun, ChainRule
from routing.services.runs import ImageSelection, image_chains, images_select
from tests.factories import ImageFactory
from tests.routing.conftest import edenai_route, make_chain


def flag(image, category, *, flagged, score=None):
    RiskFlag.objects.create(
        image=image,
        category=category,
        score=score if score is not None else (0.9 if flagged else 0.1),
        flagged=flagged,
        analyser_version="t",
    )


def correct(image, category, *, flagged):
    RiskCorrection.objects.create(image=image, category=category, flagged=flagged)


def selected(project, risk):
    return images_select(
        project=project, selection=ImageSelection(mode=CaptionRun.Selection.FILTERED, risk=risk)
    )


def test_the_run_selection_follows_the_admins_latest_correction(project):
    plain, removed, added, flipped = ImageFactory.create_batch(4, project=project)
    for image in (plain, added):
        flag(image, "chart", flagged=False)
    flag(removed, "chart", flagged=True)
    correct(removed, "chart", flagged=False)  # "this is not a chart"
    correct(added, "medical", flagged=True)  # no medical row at all: the admin's word alone
    flag(flipped, "screenshot", flagged=True)
    correct(flipped, "screenshot", flagged=False)
    correct(flipped, "screenshot", flagged=True)  # changed their mind: the latest one wins

    assert selected(project, "flagged") == [added.pk, flipped.pk]
    assert selected(project, "unflagged") == [plain.pk, removed.pk]
    assert selected(project, "chart") == []
    assert selected(project, "medical") == [added.pk]
    assert selected(project, "screenshot") == [flipped.pk]


def test_the_chain_rules_follow_the_admins_correction(project, fake_edenai):
    cheap = make_chain(project, [edenai_route(fake_edenai, name="cheap")], name="cheap")
    careful = make_chain(
        project, [edenai_route(fake_edenai, name="careful")], name="careful", is_default=False
    )
    ChainRule.objects.create(project=project, category="chart", min_score=0.5, chain=careful)
    not_a_chart, a_chart, unanalysed = ImageFactory.create_batch(3, project=project)
    flag(not_a_chart, "chart", flagged=True, score=0.95)
    correct(not_a_chart, "chart", flagged=False)
    flag(a_chart, "chart", flagged=False, score=0.2)  # under the rule's score, but an admin says
    correct(a_chart, "chart", flagged=True)
    correct(unanalysed, "chart", flagged=True)

    chains = image_chains(
        project=project,
        image_ids=[not_a_chart.pk, a_chart.pk, unanalysed.pk],
        base_chain=cheap,
        apply_rules=True,
    )
    assert chains == {not_a_chart.pk: cheap.pk, a_chart.pk: careful.pk, unanalysed.pk: careful.pk}
