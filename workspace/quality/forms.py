"""The forms of the quality pages: which run against which reference set (from the URL), and a reference import."""

from __future__ import annotations

from django import forms

from workers_app.models import ReferenceSet, Run
from workers_app.models.reference import REFERENCE_NAME


class QualityForm(forms.Form):
    run = forms.ChoiceField(required=False)
    reference = forms.ChoiceField(required=False)

    def __init__(self, *args, runs: list[str], references: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["run"].choices = [(name, name) for name in runs]
        self.fields["reference"].choices = [(name, name) for name in references]

    def problems(self) -> list[str]:
        return [f"parameter {name}: {' '.join(errors)}" for name, errors in self.errors.items()]


class ReferenceImportForm(forms.Form):
    file = forms.FileField(help_text="csv (UTF-8), xlsx or jsonl; the posts must be imported as a corpus first")
    name = forms.RegexField(REFERENCE_NAME.regex, max_length=40, error_messages={"invalid": REFERENCE_NAME.message},
                            help_text="1-40 lower-case letters, digits, '-' or '_'")
    id_column = forms.CharField(required=False, max_length=200, help_text="the sample id column; empty: ID, "
                                                                          "Sample_ID, …")
    label_columns = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="wide form: DOMAIN=COLUMN, one per line, e.g. urgency=Label")
    domain_column = forms.CharField(required=False, max_length=200, help_text="long form: the domain column")
    value_column = forms.CharField(required=False, max_length=200, help_text="long form: the label column")
    rater_column = forms.CharField(required=False, max_length=200,
                                   help_text="the rater column, when items have several raters")
    map = forms.CharField(required=False, max_length=200_000, widget=forms.Textarea(attrs={"rows": 3}),
                          help_text="the value map: DOMAIN:VALUE=CODE, one per line, e.g. urgency:Supportive=LEVEL_0")
    sheets = forms.CharField(required=False, max_length=1000, help_text="xlsx: sheet names, one per line; empty: "
                                                                        "all")
    kind = forms.ChoiceField(choices=ReferenceSet.Kind.choices, initial=ReferenceSet.Kind.EXPERT)
    raters = forms.IntegerField(required=False, min_value=1, max_value=100_000,
                                help_text="how many raters made the labels, as the source says")
    source = forms.CharField(required=False, max_length=500)
    licence = forms.CharField(required=False, max_length=200)
    citation = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}),
                               help_text="the paper to credit wherever the set is used")
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}))


def run_names() -> list[str]:
    return list(Run.objects.order_by("-is_current", "-created_at", "-id").values_list("name", flat=True))
