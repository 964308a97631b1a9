"""The filter form of the annotation browser: every value arrives in the URL, so every value may be hostile."""

from __future__ import annotations

from django import forms

from workers_app.models import Annotator, Corpus, Domain, Run

ANY = ("", "any")


class SampleFilterForm(forms.Form):
    run = forms.ChoiceField(label="Run", required=False, help_text="whose samples and outcomes; empty: the current run")
    q = forms.CharField(label="Search id or text", required=False, max_length=200, strip=True)
    corpus = forms.TypedChoiceField(label="Corpus", required=False, coerce=int, empty_value=None)
    domain = forms.ChoiceField(label="Domain", required=False)
    annotator = forms.TypedChoiceField(label="Annotator", required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(label="Status", required=False, choices=[
        ANY, ("ok", "all OK"), ("malformed", "any malformed")])
    disagreement = forms.BooleanField(label="Labels disagree", required=False)
    level_4 = forms.BooleanField(label="Any LEVEL_4 (urgency)", required=False)
    refusal = forms.BooleanField(label="Any refusal", required=False)
    review = forms.ChoiceField(label="Review", required=False, choices=[
        ANY, ("flagged", "flagged, not reviewed"), ("reviewed", "reviewed"), ("not_flagged", "not flagged")])

    def __init__(self, data, *, runs: list[Run], corpora: list[Corpus], domains: list[Domain],
                 annotators: list[Annotator]) -> None:
        super().__init__(data)
        self.fields["run"].choices = [(r.name, f"{r.name} (current)" if r.is_current else r.name) for r in runs]
        self.fields["corpus"].choices = [ANY, *((c.pk, str(c)) for c in corpora)]
        self.fields["domain"].choices = [ANY, *((d.slug, d.title) for d in domains)]
        self.fields["annotator"].choices = [ANY, *((a.number, f"{a.number} · {a.name}") for a in annotators)]

    def valid_values(self) -> dict:
        """The values that passed their check; a bad one is reported by the page and left out of the filter."""
        self.is_valid()
        return self.cleaned_data

    def problems(self) -> list[str]:
        return [f"{self.fields[name].label}: {' '.join(errors)} This filter was ignored."
                for name, errors in self.errors.items()]
