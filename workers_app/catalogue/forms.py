"""The forms of annotator settings that the admin and the workspace share: the write-only key and its rules, and
a new price version. The model's own validation (limits, the outbound policy, key names) runs in both."""

from __future__ import annotations

from django import forms

from workers_app.models import Annotator, AnnotatorPrice
from workers_app.models.key_rules import key_value_problem

from .annotators import KeyChange, NewPrice, key_problems

KEY_HELP = ("Write-only: stored encrypted, never shown again, never exported. Leave empty to keep the stored key; a "
            "new key reaches running workers within seconds.")


class AnnotatorKeyForm(forms.ModelForm):
    """An annotator's settings with its write-only key: typed in, stored encrypted, never rendered back."""

    api_key = forms.CharField(required=False, label="API key", strip=True,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                              help_text=KEY_HELP)
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Annotator
        fields = "__all__"

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"]
        problem = key and key_value_problem(key)
        if problem:
            raise forms.ValidationError(problem)
        return key

    def changed_settings(self) -> list[str]:
        return [name for name in self.changed_data if name not in ("api_key", "clear_api_key")]

    def key_change(self) -> KeyChange:
        data = getattr(self, "cleaned_data", {})
        return KeyChange(new=data.get("api_key", ""), remove=bool(data.get("clear_api_key")))

    def _post_clean(self) -> None:
        super()._post_clean()  # the settings are on the instance now, checked by the model
        if "api_key" in self.errors:
            return
        for field, problem in key_problems(self.instance, self.key_change()).items():
            self.add_error(field, problem)


class PriceForm(forms.ModelForm):
    """An optional new price version; left empty, it adds none."""

    class Meta:
        model = AnnotatorPrice
        fields = ["valid_from", "input_per_1k", "output_per_1k", "currency"]
        widgets = {"valid_from": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, annotator: Annotator, **kwargs) -> None:
        super().__init__(*args, instance=AnnotatorPrice(annotator=annotator), **kwargs)
        for field in self.fields.values():
            field.required = False
        self.initial.pop("valid_from", None)  # no date until staff give a price
        self.initial.pop("currency", None)

    @property
    def empty(self) -> bool:
        return self.is_bound and not any(str(self.data.get(self.add_prefix(name), "")).strip() for name in self.fields)

    def clean(self) -> dict:
        data = super().clean()
        if not self.empty:
            for name in self.fields:
                if data.get(name) in (None, ""):
                    self.add_error(name, "Give every part of a new price, or none of them.")
        return data

    def _post_clean(self) -> None:
        if not self.empty:
            super()._post_clean()  # the model's checks: one currency per annotator, one price a day

    def new_price(self) -> NewPrice | None:
        if self.empty:
            return None
        data = self.cleaned_data
        return NewPrice(data["valid_from"], data["input_per_1k"], data["output_per_1k"], data["currency"])
