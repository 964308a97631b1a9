"""Editing a domain's prompt, codes (with their meanings) and few-shot examples: what an edit changes, shown
before it is saved, and the audited service that saves it as the next prompt version."""

from __future__ import annotations

import copy
import difflib
from dataclasses import asdict, dataclass, field
from datetime import datetime

from audit.actions import Action
from audit.actors import Actor
from audit.models import AuditLog
from audit.services import audited
from workers_app.models import Domain

# An audit row keeps at most this many lines of a prompt's diff (a whole new prompt is a few hundred at most).
KEPT_DIFF_LINES = 400
HISTORY = 20


class EditRefused(ValueError):
    """The edit was not saved: the domain moved on since the editor read it."""


@dataclass(frozen=True)
class CodeChange:
    code: str
    before: str | None  # its meaning before; None: the code is new
    after: str | None  # its meaning after; None: the code was removed

    @property
    def kind(self) -> str:
        return "added" if self.before is None else "removed" if self.after is None else "meaning"


@dataclass(frozen=True)
class DomainChanges:
    prompt: list[str] = field(default_factory=list)  # a unified diff of the template; empty when it is the same
    codes: list[CodeChange] = field(default_factory=list)
    codes_reordered: bool = False
    examples_added: list[dict] = field(default_factory=list)
    examples_removed: list[dict] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.prompt or self.codes or self.codes_reordered or self.examples_added
                    or self.examples_removed)

    def record(self) -> dict:
        """The changes as an audit row keeps them."""
        found = asdict(self)
        found["prompt"] = self.prompt[:KEPT_DIFF_LINES]
        found["prompt_cut"] = len(self.prompt) > KEPT_DIFF_LINES
        return found


def _meanings(codes: list[dict]) -> dict[str, str]:
    return {entry["code"]: entry.get("description", "") for entry in codes}


def _key(example: dict) -> tuple[str, str]:
    return example["message"], str(example["answer"])


def domain_changes(before: Domain, after: Domain) -> DomainChanges:
    """What ``after`` changes of ``before``'s prompt, codes and few-shot examples."""
    prompt = list(difflib.unified_diff(before.prompt_template.splitlines(), after.prompt_template.splitlines(),
                                       f"version {before.prompt_version}", "edited", lineterm="", n=2))
    old, new = _meanings(before.codes), _meanings(after.codes)
    codes = [CodeChange(code, old.get(code), new.get(code)) for code in dict.fromkeys([*old, *new])
             if old.get(code) != new.get(code)]
    kept = [code for code in old if code in new]
    reordered = kept != [code for code in new if code in old]
    old_examples, new_examples = [_key(e) for e in before.few_shot], [_key(e) for e in after.few_shot]
    return DomainChanges(
        prompt=prompt, codes=codes, codes_reordered=reordered,
        examples_added=[e for e in after.few_shot if _key(e) not in old_examples],
        examples_removed=[e for e in before.few_shot if _key(e) not in new_examples])


def edited_domain(domain: Domain, *, prompt_template: str, codes: list[dict], few_shot: list[dict]) -> Domain:
    """An unsaved copy of ``domain`` with these values, checked by the model's rules (ValidationError by field)."""
    edited = copy.copy(domain)
    edited.prompt_template, edited.codes, edited.few_shot = prompt_template, codes, few_shot
    edited.full_clean()
    return edited


def save_domain(edited: Domain, *, changed: list[str], seen_version: int | None, actor: Actor,
                client_address: str | None = None) -> DomainChanges:
    """Save an edited domain (the workspace's edit or the admin's form) and name what changed in the audit row; a
    change of its prompt, codes or examples makes the next prompt version. ``seen_version``, the version the editor
    read, refuses an edit of an older version, so no one overwrites a change they never saw."""
    with audited(Action.CHANGE_DOMAIN, actor=actor, target=f"domain {edited.slug}",
                 parameters={"fields": sorted(changed), "from_version": seen_version},
                 client_address=client_address) as entry:
        current = Domain.objects.select_for_update().get(pk=edited.pk)
        if seen_version is not None and current.prompt_version != seen_version:
            raise EditRefused(f"{current.slug} is at version {current.prompt_version} now, saved since you opened "
                              f"version {seen_version}: review the changes again")
        edited.full_clean()
        changes = domain_changes(current, edited)
        edited.save()  # the model counts the version up when the prompt, codes or examples changed
        entry.detail = {"from_version": current.prompt_version, "to_version": edited.prompt_version,
                        "changes": changes.record()}
    return changes


@dataclass(frozen=True)
class Revision:
    at: datetime
    actor: str
    fields: list[str]
    from_version: int
    to_version: int
    changes: DomainChanges


def domain_history(domain: Domain, limit: int = HISTORY) -> list[Revision]:
    """The domain's saved edits, newest first, from the audit log."""
    rows = AuditLog.objects.filter(action=Action.CHANGE_DOMAIN, target=f"domain {domain.slug}",
                                   result=AuditLog.Result.OK).order_by("-at", "-id")[:limit]
    found = []
    for row in rows:
        record = dict(row.detail.get("changes", {}))
        record.pop("prompt_cut", None)
        record["codes"] = [CodeChange(**change) for change in record.get("codes", [])]
        found.append(Revision(row.at, row.actor, row.parameters.get("fields", []), row.detail.get("from_version"),
                              row.detail.get("to_version"), DomainChanges(**record)))
    return found
