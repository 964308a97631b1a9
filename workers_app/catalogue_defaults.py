"""The default catalogue that seed_defaults creates: 6 domains and 5 built-in annotators."""

from __future__ import annotations

from django.db import transaction

from audit.actions import Action
from audit.actors import Actor
from audit.services import audited

from .beat_schedules import seed_schedules
from .models import Annotator, Domain

_ANSWER_RULE = (
    "Think briefly if you need to, then end your reply with the final answer inside double angle "
    "brackets, exactly once, as the very last thing you write."
)


def _codes(*pairs: tuple[str, str]) -> list[dict]:
    return [{"code": code, "description": description} for code, description in pairs]


def _template(task: str, answer_format: str) -> str:
    return (
        "You are assisting mental-health researchers who code help-seeking posts.\n"
        f"{task}\n\nCodes:\n{{codes}}\n\n{_ANSWER_RULE}\nAnswer format: {answer_format}\n\n"
        "Post:\n\"\"\"\n{text}\n\"\"\""
    )


def _shots(*pairs: tuple[str, str]) -> list[dict]:
    return [{"message": message, "answer": answer} for message, answer in pairs]


# Invented examples for completion-mode (base) models; staff replace them with vetted ones.
FEW_SHOT = {
    "urgency": _shots(("I want tips to keep a calmer morning routine.", "<<LEVEL_0>>"),
                      ("Exams are stressing me out and I sleep badly this month.", "<<LEVEL_1>>"),
                      ("I have a plan to end my life tonight.", "<<LEVEL_4>>")),
    "therapeutic": _shots(("My thoughts spiral into worst cases before every test.", "<<TA-1>>"),
                          ("My parents and I fight about everything at home.", "<<TA-6>>")),
    "intensity": _shots(("I would like a book about handling stress.", "<<INT-1>>"),
                        ("Panic attacks stop me leaving the house most days.", "<<INT-4>>")),
    "adjunct": _shots(("I only want to talk to someone now and then.", "<<NONE>>"),
                      ("I drink every night to calm down and my grades are slipping.", "<<ADJ-3, ADJ-6>>")),
    "modality": _shots(("I would rather talk online than in person.", "<<MOD-1, MOD-5>>"),
                       ("My partner and I keep arguing.", "<<MOD-4>>")),
    "redressal": _shots(("I cannot sleep and worry about my exams.", '<<["sleep problems", "exam stress"]>>')),
}

DOMAINS = [
    {
        "slug": "urgency", "title": "Urgency", "kind": Domain.Kind.ORDINAL,
        "codes": _codes(
            ("LEVEL_0", "self-help: no sign that professional help is needed soon"),
            ("LEVEL_1", "low: support would help within weeks"),
            ("LEVEL_2", "moderate: should see a professional within days"),
            ("LEVEL_3", "high: needs professional contact within 24 hours"),
            ("LEVEL_4", "critical: immediate risk to life or safety"),
        ),
        "prompt_template": _template("Rate how urgently the writer needs professional help.", "<<LEVEL_n>>"),
    },
    {
        "slug": "therapeutic", "title": "Therapeutic approach", "kind": Domain.Kind.CODE_SET,
        "codes": _codes(
            ("TA-1", "cognitive behavioural therapy"), ("TA-2", "dialectical behaviour therapy"),
            ("TA-3", "trauma-focused therapy"), ("TA-4", "interpersonal therapy"),
            ("TA-5", "acceptance and commitment therapy"), ("TA-6", "family systems therapy"),
            ("TA-7", "psychoeducation"), ("TA-8", "motivational interviewing"),
            ("TA-9", "supportive counselling"),
        ),
        "prompt_template": _template(
            "Choose every therapeutic approach that would suit the writer.", "<<TA-1, TA-5>> (one or more codes)"
        ),
    },
    {
        "slug": "intensity", "title": "Intensity", "kind": Domain.Kind.ORDINAL,
        "codes": _codes(
            ("INT-1", "self-guided resources"), ("INT-2", "low-intensity guided support"),
            ("INT-3", "regular outpatient sessions"), ("INT-4", "frequent outpatient sessions"),
            ("INT-5", "intensive outpatient programme"),
        ),
        "prompt_template": _template("Choose the level of care intensity the writer needs.", "<<INT-n>>"),
    },
    {
        "slug": "adjunct", "title": "Adjunct services", "kind": Domain.Kind.CODE_SET,
        "codes": _codes(
            ("ADJ-1", "psychiatric consultation"), ("ADJ-2", "medical referral"),
            ("ADJ-3", "academic accommodations"), ("ADJ-4", "peer support"),
            ("ADJ-5", "crisis and safety planning"), ("ADJ-6", "substance use services"),
            ("ADJ-7", "nutrition services"), ("ADJ-8", "skills or occupational support"),
            ("NONE", "no adjunct service is needed (never together with other codes)"),
        ),
        "parse_rules": {"none_code": "NONE"},
        "prompt_template": _template(
            "Choose every adjunct service the writer would benefit from, or NONE.", "<<ADJ-1, ADJ-4>> or <<NONE>>"
        ),
    },
    {
        "slug": "modality", "title": "Modality", "kind": Domain.Kind.CODE_SET,
        "codes": _codes(
            ("MOD-1", "individual"), ("MOD-2", "group"), ("MOD-3", "family"),
            ("MOD-4", "couples"), ("MOD-5", "online"), ("MOD-6", "workshop"),
        ),
        "prompt_template": _template("Choose every modality of care that fits the writer.", "<<MOD-1, MOD-5>>"),
    },
    {
        "slug": "redressal", "title": "Redressal", "kind": Domain.Kind.STRING_LIST,
        "codes": [],
        "parse_rules": {"min_items": 1, "max_items": 10, "max_item_chars": 200},
        "prompt_template": (
            "You are assisting mental-health researchers who code help-seeking posts.\n"
            "List the concrete issues a helper should address for this writer, each in a few words.\n\n"
            f"{_ANSWER_RULE}\nAnswer format: a JSON list of 1 to 10 short strings, "
            "e.g. <<[\"sleep problems\", \"exam stress\"]>>\n\nPost:\n\"\"\"\n{text}\n\"\"\""
        ),
    },
]

ANNOTATOR_NAMES = ["Baseline A", "Baseline B", "Baseline C", "Baseline D", "Baseline E"]
# Each built-in annotator reads the lexicon its own way (synthetic, see engine/builtin.py), so a new install shows
# disagreement, agreement below 1 and a review queue with urgency spreads, as real models would give.
ANNOTATOR_PROFILES = [Annotator.BuiltinProfile.REFERENCE, Annotator.BuiltinProfile.CAUTIOUS,
                      Annotator.BuiltinProfile.RESERVED, Annotator.BuiltinProfile.BROAD,
                      Annotator.BuiltinProfile.TERSE]


def seed_defaults(*, actor: Actor) -> dict[str, int]:
    """Create what is missing; never change what exists (staff edits survive)."""
    created = {"domains": 0, "annotators": 0, "schedules": 0}
    with transaction.atomic():
        for position, spec in enumerate(DOMAINS):
            _, made = Domain.objects.get_or_create(
                slug=spec["slug"], defaults={**{k: v for k, v in spec.items() if k != "slug"}, "position": position,
                                             "few_shot": FEW_SHOT.get(spec["slug"], [])}
            )
            created["domains"] += made
        for number, (name, profile) in enumerate(zip(ANNOTATOR_NAMES, ANNOTATOR_PROFILES, strict=True), start=1):
            _, made = Annotator.objects.get_or_create(number=number, defaults={"name": name,
                                                                              "builtin_profile": profile})
            created["annotators"] += made
        created["schedules"] = seed_schedules()
    if any(created.values()):
        with audited(Action.SEED_DEFAULTS, actor=actor, parameters={}) as entry:
            entry.detail = created
    return created
