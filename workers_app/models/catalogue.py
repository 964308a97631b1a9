from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

PROMPT_SAMPLE_FIELD = "{text}"


class Domain(models.Model):
    """A clinical domain: what codes exist, how to ask for them and how to read the answer."""

    class Kind(models.TextChoices):
        ORDINAL = "ordinal", "one code, ordinal"
        NOMINAL = "nominal", "one code, nominal"
        CODE_SET = "code_set", "set of codes"
        STRING_LIST = "string_list", "list of short strings"

    slug = models.SlugField(unique=True, max_length=32)
    title = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    codes = models.JSONField(
        default=list,
        blank=True,
        help_text='List of {"code": ..., "description": ...}, in order (order matters for ordinal domains).',
    )
    prompt_template = models.TextField(help_text=f"Must contain {PROMPT_SAMPLE_FIELD} where the post goes.")
    prompt_version = models.PositiveIntegerField(default=1, editable=False)
    parse_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"none_code": "NONE"} or {"min_items": 1, "max_items": 10, "max_item_chars": 200}',
    )
    few_shot = models.JSONField(
        default=list, blank=True,
        help_text='Examples for completion-mode models: [{"message": "...", "answer": "<<LEVEL_2>>"}, ...]. '
                  "Versioned with the prompt.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def code_list(self) -> list[str]:
        return [entry["code"] for entry in self.codes]

    def clean(self) -> None:
        if PROMPT_SAMPLE_FIELD not in self.prompt_template:
            raise ValidationError({"prompt_template": f"The template must contain {PROMPT_SAMPLE_FIELD}."})
        if self.kind != self.Kind.STRING_LIST and not self.codes:
            raise ValidationError({"codes": "A coded domain needs at least one code."})
        for index, entry in enumerate(self.codes):
            if not isinstance(entry, dict) or not str(entry.get("code", "")).strip():
                raise ValidationError({"codes": f"Entry {index + 1} needs a non-empty 'code'."})
        for index, example in enumerate(self.few_shot):
            if not isinstance(example, dict) or not example.get("message") or "<<" not in str(example.get("answer")):
                raise ValidationError({"few_shot": f"Example {index + 1} needs a 'message' and an 'answer' with "
                                                   "a <<...>> marker."})

    def save(self, *args, **kwargs) -> None:
        # Every change of wording gets a new version, so each stored outcome names the prompt it saw.
        if self.pk is not None:
            stored = Domain.objects.filter(pk=self.pk).values("prompt_template", "few_shot").first()
            if stored is not None and (stored["prompt_template"], stored["few_shot"]) != (self.prompt_template,
                                                                                         self.few_shot):
                self.prompt_version += 1
        super().save(*args, **kwargs)


class Annotator(models.Model):
    """One LLM annotator: a model behind one API key, with its own settings."""

    class Backend(models.TextChoices):
        BUILTIN = "builtin", "built-in baseline"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"

    number = models.PositiveSmallIntegerField(unique=True, validators=[MinValueValidator(1)])
    name = models.CharField(max_length=100)
    class RequestMode(models.TextChoices):
        CHAT = "chat", "chat"
        COMPLETION = "completion", "completion"

    backend = models.CharField(
        max_length=32, choices=Backend.choices, default=Backend.BUILTIN,
        help_text="built-in: an offline keyword baseline for demos and benchmarks, not a clinical model")
    request_mode = models.CharField(
        max_length=12, choices=RequestMode.choices, default=RequestMode.CHAT,
        help_text="HTTP backend: chat (messages) for instruction-tuned models; completion (a few-shot prompt) "
                  "for base models such as the local Gemma 3 270M")
    max_input_chars = models.PositiveIntegerField(
        default=0, help_text="cut posts longer than this before sending (0: never); for small context windows")
    model = models.CharField(max_length=200, default="builtin-lexicon-v1")
    base_url = models.URLField(blank=True, help_text="e.g. http://127.0.0.1:8080/v1")
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="NAME of the environment variable holding the API key. The key itself is never stored.",
    )
    requests_per_minute = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1)])
    temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(default=512)
    timeout_seconds = models.FloatField(default=60.0, validators=[MinValueValidator(0.1)])
    max_retries = models.PositiveSmallIntegerField(default=3)
    enabled = models.BooleanField(default=True)
    builtin_latency_ms = models.PositiveIntegerField(
        default=0, help_text="built-in backend only: simulated answer time, for demos and benchmarks")
    builtin_malformed_rate = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="built-in backend only: share of deliberately malformed answers (0 to 1)")
    # Set when the backend refused permanently (bad key, 401/403/400): its workers stop calling until cleared.
    backend_error = models.TextField(blank=True, editable=False)
    backend_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"annotator {self.number} ({self.name})"

    def clean(self) -> None:
        if self.backend == self.Backend.OPENAI_COMPATIBLE and not self.base_url:
            raise ValidationError({"base_url": "An OpenAI-compatible annotator needs a base URL."})
        if self.api_key_env and not self.api_key_env.replace("_", "").isalnum():
            raise ValidationError({"api_key_env": "Give the variable's NAME (letters, digits, _), not the key."})
