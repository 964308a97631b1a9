"""Gold checks of a run: the settings a run is made with, and which reference items it mixes in.

A run with gold checks takes, beside the samples its selection chose, ``share`` x that many items of a reference set
(rounded, at least one), drawn with the run's seed from the set's samples that carry a label in a coded domain the
run takes. They are queued like every other sample; only ``RunSample.gold`` knows them. Items the selection chose
already may be drawn too: they stay where they are and become gold. The same plan on the same store draws the same
items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from workers_app.models import Domain, ReferenceLabel, ReferenceSet

# Free text (redressal) has no right answer to check against.
CHECKED_KINDS = (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL, Domain.Kind.CODE_SET)
MAX_SHARE = 0.5  # more gold than work would make the run a test, not a run
DEFAULT_MIN_ITEMS = 10
# What the command and the form offer when a setting is left out.
GOLD_DEFAULTS = {"share": 0.05, "threshold": 0.7, "min_items": DEFAULT_MIN_ITEMS}


class GoldRefused(ValueError):
    """Gold settings that cannot be used; the message says why."""


@dataclass
class GoldPlan:
    """A run's gold settings: mix ``share`` of reference items from ``reference`` into the run; judge an annotator
    once it answered ``min_items`` of them, on its last ``window`` gold answers (None: all), and pause it below
    ``threshold`` accuracy."""

    reference: ReferenceSet
    share: float
    threshold: float
    min_items: int = DEFAULT_MIN_ITEMS
    window: int | None = None

    def check(self) -> None:
        if not 0 < self.share <= MAX_SHARE:
            raise GoldRefused(f"gold share {self.share}: give a fraction above 0 and at most {MAX_SHARE}, "
                              "e.g. 0.05 for one gold item per twenty samples")
        if not 0 < self.threshold <= 1:
            raise GoldRefused(f"gold threshold {self.threshold}: give an accuracy above 0 and at most 1, e.g. 0.7")
        if self.min_items < 1:
            raise GoldRefused(f"gold minimum {self.min_items}: give at least 1 gold item before judging")
        if self.window is not None and self.window < self.min_items:
            raise GoldRefused(f"gold window {self.window}: it must hold at least the {self.min_items} items judged "
                              "first (or leave it out to judge every gold answer)")

    def as_fields(self) -> dict:
        """The Run fields that keep these settings."""
        return {"gold_reference": self.reference, "gold_share": self.share, "gold_threshold": self.threshold,
                "gold_min_items": self.min_items, "gold_window": self.window}


def gold_candidates(reference: ReferenceSet, domains: list[str]) -> list[int]:
    """The sample ids of the set labelled in a checked domain among ``domains``, in id order."""
    return list(ReferenceLabel.objects.filter(reference_set=reference, domain__slug__in=domains,
                                              domain__kind__in=CHECKED_KINDS)
                .order_by("sample_id").values_list("sample_id", flat=True).distinct())


def choose_gold(plan: GoldPlan, domains: list[str], chosen: int, seed: int) -> list[int]:
    """The gold sample ids for a run of ``chosen`` samples over ``domains``, seeded: ``share`` x ``chosen``
    (rounded, at least one), or every candidate when the set has fewer."""
    candidates = gold_candidates(plan.reference, domains)
    if not candidates:
        raise GoldRefused(f"reference set {plan.reference.name} labels no sample in a domain this run takes "
                          f"({', '.join(domains)}) that gold checks can score (free text cannot be)")
    wanted = min(len(candidates), max(1, round(plan.share * chosen)))
    # A seed of its own: the same run seed draws its samples and its gold items independently.
    return sorted(random.Random(f"gold:{seed}").sample(candidates, wanted))
