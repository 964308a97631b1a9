"""The forms of the runs pages. What the fleet service checks itself (a name's rule and uniqueness, the share, the
limit, the budget's bounds, samples chosen) it reports in its own words; the form only checks what reaches it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from workers_app.models import Annotator, Corpus, Domain, ReferenceSet, Run
from workers_app.models.catalogue import no_control_characters
from workers_app.models.runs import RUN_NAME
from workers_app.references.selectors import UnknownReference, reference_by_name
from workers_app.runs.gold import GOLD_DEFAULTS, GoldPlan
from workers_app.runs.services import RunPlan

MAX_SEED = 2**31 - 1


class RunForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="1-40 lower-case letters, digits, '-' or '_'; also its folder")
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                                  validators=[no_control_characters])
    annotators = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple,
                                                error_messages={"required": "Choose at least one annotator."})
    domains = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple,
                                        error_messages={"required": "Choose at least one domain."})
    corpora = forms.TypedMultipleChoiceField(coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
                                             help_text="none ticked: every corpus")
    share = forms.FloatField(required=False, help_text="a seeded random share of those samples, e.g. 0.1; "
                                                       "empty: all")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=MAX_SEED, help_text="the same seed takes the same "
                                                                                    "samples")
    limit = forms.IntegerField(required=False, help_text="at most this many samples; empty: no limit")
    budget = forms.DecimalField(required=False, max_digits=14, decimal_places=4,
                                help_text="stop calling once this run's outcomes cost this much; empty: no budget")
    gold_reference = forms.ChoiceField(required=False, label="Gold checks: reference set",
                                       help_text="mix items of this set into the run, unknown to the workers; "
                                                 "empty: no gold checks")
    gold_share = forms.FloatField(required=False, initial=GOLD_DEFAULTS["share"], label="Gold share",
                                  help_text="gold items as a share of the samples chosen")
    gold_threshold = forms.FloatField(required=False, initial=GOLD_DEFAULTS["threshold"],
                                      label="Gold accuracy threshold",
                                      help_text="pause an annotator whose gold accuracy falls below this")
    gold_min_items = forms.IntegerField(required=False, initial=GOLD_DEFAULTS["min_items"],
                                        label="Gold items before judging")
    gold_window = forms.IntegerField(required=False, label="Gold window",
                                     help_text="judge the last N gold answers; empty: all of them")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        annotators = list(Annotator.objects.order_by("number").values_list("number", "name"))
        domains = list(Domain.objects.order_by("position", "slug").values_list("slug", "title"))
        self.fields["annotators"].choices = [(number, f"{number} · {name}") for number, name in annotators]
        self.fields["domains"].choices = domains
        self.fields["corpora"].choices = [(c.pk, f"{c.file_name} ({c.imported_at:%Y-%m-%d})")
                                          for c in Corpus.objects.order_by("-imported_at")]
        self.fields["gold_reference"].choices = [("", "none"), *((name, name) for name in ReferenceSet.objects.order_by(
            "name").values_list("name", flat=True))]
        if not self.is_bound:
            self.initial.update(annotators=[n for n, _ in annotators], domains=[s for s, _ in domains])

    def _gold(self) -> GoldPlan | None:
        values = self.cleaned_data
        if not values["gold_reference"]:
            return None
        # The defaults stand for a setting left empty; the service checks the values.
        given = {name: values[f"gold_{name}"] for name in GOLD_DEFAULTS if values[f"gold_{name}"] is not None}
        return GoldPlan(reference=ReferenceSet.objects.get(name=values["gold_reference"]), window=values["gold_window"],
                        **{**GOLD_DEFAULTS, **given})

    def plan(self) -> RunPlan:
        values = self.cleaned_data
        return RunPlan(name=values["name"], description=values["description"], annotators=values["annotators"],
                       domains=values["domains"], corpora=values["corpora"], share=values["share"],
                       seed=values["seed"], limit=values["limit"], budget=values["budget"], gold=self._gold())


class CompareForm(forms.Form):
    """The two runs of /runs/compare/, from the URL: each must name a run the store has."""

    a = forms.CharField(max_length=40, error_messages={"required": "missing: name the first run."})
    b = forms.CharField(max_length=40, error_messages={"required": "missing: name the second run."})
    reference = forms.CharField(max_length=40, required=False)

    def clean_reference(self) -> ReferenceSet | None:
        name = self.cleaned_data["reference"]
        if not name:
            return None
        try:
            return reference_by_name(name)
        except UnknownReference as exc:
            raise ValidationError(str(exc)) from None

    def _run(self, field: str) -> Run:
        name = self.cleaned_data[field]
        try:
            RUN_NAME(name)  # before any query: PostgreSQL refuses a NUL in a parameter
        except ValidationError:
            raise ValidationError(f"“{name[:40]}” is not a run name.") from None
        run = Run.objects.filter(name=name).first()
        if run is None:
            raise ValidationError(f"no run named “{name}”.")
        return run

    def clean_a(self) -> Run:
        return self._run("a")

    def clean_b(self) -> Run:
        return self._run("b")

    def problems(self) -> list[str]:
        return [f"parameter {name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
                for name, errors in self.errors.items()]
