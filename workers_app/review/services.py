"""A reviewer's steps on one item: claim it, release it, record the adjudicated labels. Each is one conditional
UPDATE (two reviewers racing for an item: one wins, the other gets a clear refusal) with its audit row; a refusal
changes nothing and leaves a ``failed`` audit row naming why."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from audit.actions import Action
from audit.services import audited
from workers_app.models import Domain, ReviewItem
from workers_app.references.adjudicated import sync_adjudicated

PERMISSION = "workers_app.review_sample"
MAX_NOTE_CHARS = 10_000
# Every kind of domain: a free-text list (redressal) is adjudicated as the reviewer's own list of issues.
ADJUDICABLE = (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL, Domain.Kind.CODE_SET, Domain.Kind.STRING_LIST)
# A free-text list's bounds where its domain's parse rules set none (the parser's defaults).
LIST_DEFAULTS = {"min_items": 1, "max_items": 10, "max_item_chars": 200}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a line break or control character; a tab may stay


class ReviewRefused(Exception):
    """The step is not allowed now; the message says why, for the reviewer."""


class InvalidAdjudication(ReviewRefused):
    """Some labels are not valid: ``problems`` maps each bad domain slug (or "note") to why."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{where}: {why}" for where, why in problems.items()))
        self.problems = problems


def _target(item: ReviewItem) -> str:
    return f"review item {item.pk} (sample {item.sample_id})"


def _check_reviewer(user: AbstractBaseUser) -> None:
    if not user.has_perm(PERMISSION):
        raise ReviewRefused(f"{user.get_username()} may not review samples (needs {PERMISSION})")


def _current(item: ReviewItem) -> ReviewItem:
    found = ReviewItem.objects.select_related("claimed_by", "reviewed_by").filter(pk=item.pk).first()
    if found is None:
        raise ReviewRefused(f"review item {item.pk} no longer exists")
    return found


def _name(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user else "someone"


def _why_not_claimable(item: ReviewItem) -> str:
    if item.status == ReviewItem.Status.REVIEWED:
        return f"this item was already reviewed by {_name(item.reviewed_by)}"
    return f"this item is already claimed by {_name(item.claimed_by)}"


def claim_review(item: ReviewItem, *, actor_user: AbstractBaseUser) -> ReviewItem:
    """Take an open item: only one reviewer at a time. Claiming one's own claimed item again changes nothing."""
    with audited(Action.CLAIM_REVIEW, actor=actor_user, target=_target(item)) as entry:
        _check_reviewer(actor_user)
        claimed = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.OPEN).update(
            status=ReviewItem.Status.CLAIMED, claimed_by=actor_user, claimed_at=timezone.now())
        current = _current(item)
        if not claimed and not (current.status == ReviewItem.Status.CLAIMED
                                and current.claimed_by_id == actor_user.pk):
            raise ReviewRefused(_why_not_claimable(current))
        entry.detail = {"already_yours": not claimed}
    return current


def release_review(item: ReviewItem, *, actor_user: AbstractBaseUser) -> ReviewItem:
    """Give a claimed item back to the queue: its claimer may, and a superuser (a reviewer who left)."""
    with audited(Action.RELEASE_REVIEW, actor=actor_user, target=_target(item)) as entry:
        _check_reviewer(actor_user)
        current = _current(item)
        if current.status != ReviewItem.Status.CLAIMED:
            raise ReviewRefused(f"this item is {current.status}, not claimed")
        if current.claimed_by_id != actor_user.pk and not actor_user.is_superuser:
            raise ReviewRefused(f"only its claimer ({_name(current.claimed_by)}) or a superuser may release this item")
        released = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.CLAIMED,
                                             claimed_by_id=current.claimed_by_id).update(
            status=ReviewItem.Status.OPEN, claimed_by=None, claimed_at=None)
        if not released:
            raise ReviewRefused("this item changed meanwhile; reload it")
        entry.detail = {"claimed_by": _name(current.claimed_by)}
    return _current(item)


def adjudicate_review(item: ReviewItem, *, labels: dict[str, list[str]], note: str,
                      actor_user: AbstractBaseUser) -> ReviewItem:
    """Record the reviewer's label per domain and a note, and mark the item reviewed: only its claimer may."""
    with audited(Action.ADJUDICATE_REVIEW, actor=actor_user, target=_target(item),
                 parameters={"labels": labels if isinstance(labels, dict) else repr(labels)[:200]}):
        _check_reviewer(actor_user)
        adjudicated = validated_labels(labels)
        note = _validated_note(note)
        done = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.CLAIMED,
                                         claimed_by_id=actor_user.pk).update(
            status=ReviewItem.Status.REVIEWED, reviewed_by=actor_user, reviewed_at=timezone.now(),
            adjudicated=adjudicated, note=note)
        if not done:
            current = _current(item)
            if current.status == ReviewItem.Status.OPEN:
                raise ReviewRefused("claim this item before recording its labels")
            raise ReviewRefused(_why_not_claimable(current))
        sync_adjudicated([item.sample_id])  # the adjudicated reference set, in the same transaction
    return _current(item)


def adjudicable_domains() -> list[Domain]:
    return list(Domain.objects.filter(kind__in=ADJUDICABLE).order_by("position", "slug"))


def validated_labels(labels: object) -> dict[str, list[str]]:
    """The labels in catalogue spelling and order, or InvalidAdjudication naming every bad domain and why."""
    if not isinstance(labels, dict):
        raise InvalidAdjudication({"labels": "give a mapping of domain to codes"})
    domains = {domain.slug: domain for domain in adjudicable_domains()}
    problems, clean = {}, {}
    for slug, codes in labels.items():
        domain = domains.get(slug) if isinstance(slug, str) else None
        if domain is None:
            problems[str(slug)[:40]] = "not a domain that can be adjudicated"
            continue
        problem = _items_problem(domain, codes) if domain.kind == Domain.Kind.STRING_LIST \
            else codes_problem(domain, codes)
        if problem:
            problems[slug] = problem
        elif domain.kind == Domain.Kind.STRING_LIST:
            clean[slug] = [item.strip() for item in codes]
        else:
            clean[slug] = [code for code in allowed_codes(domain) if code in codes]
    if problems:
        raise InvalidAdjudication(problems)
    return clean


def allowed_codes(domain: Domain) -> list[str]:
    """The codes a reviewer may choose, in catalogue order (a code set's none code too, once)."""
    none_code = domain.parse_rules.get("none_code") if domain.kind == Domain.Kind.CODE_SET else None
    return list(dict.fromkeys([*domain.code_list, *([none_code] if none_code else [])]))


def codes_problem(domain: Domain, codes: object) -> str | None:
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        return "give a list of codes"
    allowed = allowed_codes(domain)
    unknown = [code for code in codes if code not in allowed]
    if unknown:
        return f"{unknown[0][:40]!r} is not one of its codes ({', '.join(allowed)})"
    if len(set(codes)) != len(codes):
        return "a code is given twice"
    if domain.kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL) and len(codes) != 1:
        return f"choose exactly one code (got {len(codes)})"
    none_code = domain.parse_rules.get("none_code")
    if none_code in codes and len(codes) > 1:
        return f"{none_code} stands alone"
    return None


def list_rules(domain: Domain) -> dict[str, int]:
    return {name: domain.parse_rules.get(name, default) for name, default in LIST_DEFAULTS.items()}


def _items_problem(domain: Domain, items: object) -> str | None:
    """A free-text list: short lines of text, as many as the domain's parse rules allow, none twice."""
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return "give a list of issues (text)"
    rules = list_rules(domain)
    stripped = [item.strip() for item in items]
    if not rules["min_items"] <= len(stripped) <= rules["max_items"]:
        return f"give {rules['min_items']} to {rules['max_items']} issues (got {len(stripped)})"
    for number, item in enumerate(stripped, start=1):
        if not item:
            return f"issue {number} is empty"
        if len(item) > rules["max_item_chars"]:
            return f"issue {number} is longer than {rules['max_item_chars']} characters"
        if _CONTROL.search(item):
            return f"issue {number} holds a control character"
    if len(set(stripped)) != len(stripped):
        return "an issue is given twice"
    return None


def _validated_note(note: object) -> str:
    if not isinstance(note, str):
        raise InvalidAdjudication({"note": "give the note as text"})
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidAdjudication({"note": f"at most {MAX_NOTE_CHARS} characters (got {len(note)})"})
    return note.strip()
