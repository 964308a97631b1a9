"""The adjudication form of one item: per domain its codes with their meanings (numbered for the keyboard), the
label chosen so far (the reviewer's, else the annotators' majority), the examples the models were shown, and the
error next to it. A free-text domain (redressal) is a list of issues, one per line."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict

from stats.agreement import majority_label
from workers_app.models import Domain, Outcome, ReviewItem
from workers_app.review.services import adjudicable_domains, allowed_codes, list_rules
from workers_app.runs.current import current_run, pinned_domain

LABEL_FIELD = "label-"


@dataclass
class Choice:
    number: int  # its key: 1-9 pick the first nine codes
    code: str
    meaning: str


@dataclass
class DomainField:
    domain: Domain
    chosen: list[str]
    error: str = ""
    choices: list[Choice] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    rules: dict = field(default_factory=dict)  # a free-text list's bounds

    @property
    def kind(self) -> str:
        if self.domain.kind == Domain.Kind.STRING_LIST:
            return "list"
        return "many" if self.domain.kind == Domain.Kind.CODE_SET else "one"

    @property
    def name(self) -> str:
        return f"{LABEL_FIELD}{self.domain.slug}"

    @property
    def text(self) -> str:
        return "\n".join(self.chosen)


def submitted_labels(post: QueryDict) -> dict[str, list[str]]:
    """The labels a form sent, per domain slug. An empty choice ("not adjudicated", nothing ticked, no line) leaves
    the domain out rather than guessing a label for it; a free-text list arrives one issue per line."""
    labels = {}
    for key in post:
        if not key.startswith(LABEL_FIELD):
            continue
        values = post.getlist(key)
        if len(values) == 1 and "\n" in values[0]:
            values = values[0].splitlines()
        chosen = [value for value in values if value.strip()]
        if chosen:
            labels[key.removeprefix(LABEL_FIELD)] = chosen
    return labels


def _majority(item: ReviewItem, domain: Domain) -> list[str]:
    given = Outcome.objects.filter(run=current_run(), sample_id=item.sample_id, domain=domain,
                                   status=Outcome.Status.OK).values_list("labels", flat=True)
    if domain.kind == Domain.Kind.STRING_LIST:
        winner, _ = majority_label([tuple(labels) for labels in given])
        return list(winner) if winner else []
    winner, _ = majority_label([frozenset(labels) for labels in given])
    return sorted(winner) if winner else []


def _choices(domain: Domain) -> list[Choice]:
    meanings = {entry["code"]: entry.get("description", "") for entry in domain.codes}
    return [Choice(number, code, meanings.get(code, "")) for number, code in enumerate(allowed_codes(domain), 1)]


def form_fields(item: ReviewItem, submitted: dict[str, list[str]] | None,
                problems: dict[str, str]) -> list[DomainField]:
    run = current_run()
    fields = []
    for domain in adjudicable_domains():
        if submitted is not None:
            chosen = submitted.get(domain.slug, [])
        else:
            chosen = item.adjudicated.get(domain.slug) or _majority(item, domain)
        shown = pinned_domain(run, domain)  # the examples this run's models saw
        fields.append(DomainField(domain, chosen, problems.get(domain.slug, ""), _choices(domain),
                                  list(shown.few_shot or []),
                                  list_rules(domain) if domain.kind == Domain.Kind.STRING_LIST else {}))
    return fields
