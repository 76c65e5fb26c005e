"""Fallback chains and the rules that send risky images to another chain."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from labeling.models import Project
from routing.models import Chain, ChainRule, ChainStep, Route
from routing.services.config import max_deadline_s


class ChainError(Exception):
    """The chain cannot be saved as asked; the message is for the user."""


def _check(*, deadline_s: float, routes: Sequence[Route]) -> None:
    if not routes:
        raise ChainError("A chain needs at least one route.")
    if len({r.pk for r in routes}) != len(routes):
        raise ChainError("A route can appear only once in a chain.")
    if not 0 < deadline_s <= max_deadline_s():
        raise ChainError(f"The deadline must be between 0 and {max_deadline_s():g} seconds.")


def chain_save(
    *,
    project: Project,
    name: str,
    routes: Sequence[Route],
    deadline_s: float = 120.0,
    is_default: bool = False,
    chain: Chain | None = None,
) -> Chain:
    """Create or update a chain: ``routes[0]`` is the primary, the rest are fallbacks in order."""
    _check(deadline_s=deadline_s, routes=routes)
    try:
        with transaction.atomic():
            if is_default:
                others = Chain.objects.filter(project=project, is_default=True)
                if chain is not None:
                    others = others.exclude(pk=chain.pk)
                others.update(is_default=False)
            if chain is None:
                chain = Chain.objects.create(
                    project=project, name=name, deadline_s=deadline_s, is_default=is_default
                )
            else:
                chain.name, chain.deadline_s, chain.is_default = name, deadline_s, is_default
                chain.save()
                chain.steps.all().delete()
            ChainStep.objects.bulk_create(
                ChainStep(chain=chain, route=route, position=i) for i, route in enumerate(routes)
            )
    except IntegrityError as exc:
        raise ChainError(f"This project already has a chain named {name!r}.") from exc
    return chain


def chain_delete(*, chain: Chain) -> None:
    chain.delete()


def chain_rule_add(
    *, project: Project, chain: Chain, category: str = "", min_score: float = 0.0
) -> ChainRule:
    if chain.project_id != project.pk:
        raise ChainError("The chain belongs to another project.")
    if not 0.0 <= min_score <= 1.0:
        raise ChainError("The minimum score is between 0 and 1.")
    last = ChainRule.objects.filter(project=project).order_by("-position").first()
    return ChainRule.objects.create(
        project=project,
        chain=chain,
        category=category,
        min_score=min_score,
        position=(last.position + 1) if last else 0,
    )


def chain_rule_delete(*, rule: ChainRule) -> None:
    rule.delete()
