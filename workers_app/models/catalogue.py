from __future__ import annotations

import math
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation_site.outbound import OutboundRefused, check_url

from .answer_schema import answer_schema
from .key_rules import env_name_problem, looks_like_a_key, same_destination, url_key_problem

PROMPT_SAMPLE_FIELD = "{text}"
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MAX_CODES = 100
MAX_FEW_SHOT = 20
# What the model is shown of a domain besides the post: a change to any of them is a new prompt version.
PROMPT_FIELDS = ("prompt_template", "codes", "few_shot")
MAX_BUDGET = Decimal(1_000_000_000)
MAX_ANSWERS_PER_ITEM = 9  # self-consistency: k answers per item cost k calls each
# Which parse_rules keys each kind of domain reads (engine/parsing.py), with the range each value may take.
PARSE_RULES = {
    "code_set": {"none_code": None},
    "string_list": {"min_items": (0, 100), "max_items": (1, 100), "max_item_chars": (1, 10_000)},
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValidationError("Enter a finite number.")


def no_control_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("Control characters are not allowed here.")


def not_a_key(value: str) -> None:
    if looks_like_a_key(value):
        raise ValidationError("This looks like an API key: paste keys into the write-only API key field only.")


class Domain(models.Model):
    """A clinical domain: what codes exist, how to ask for them and how to read the answer."""

    class Kind(models.TextChoices):
        ORDINAL = "ordinal", "one code, ordinal"
        NOMINAL = "nominal", "one code, nominal"
        CODE_SET = "code_set", "set of codes"
        STRING_LIST = "string_list", "list of short strings"

    slug = models.SlugField(unique=True, max_length=32)
    title = models.CharField(max_length=100, validators=[no_control_characters])
    kind = models.CharField(max_length=16, choices=Kind.choices)
    codes = models.JSONField(
        default=list,
        blank=True,
        help_text='List of {"code": ..., "description": ...}, in order (order matters for ordinal domains).',
    )
    prompt_template = models.TextField(help_text=f"Must contain {PROMPT_SAMPLE_FIELD} where the post goes.")
    prompt_version = models.PositiveIntegerField(default=1, editable=False)
    schema_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="counts the changes of the answer's JSON schema (structured outputs)")
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
    # Review routing (workers_app/review/flags.py); empty: the reason is off for this domain.
    review_below_confidence = models.FloatField(
        null=True, blank=True, validators=[finite, MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="send a post to the review queue (low_confidence) when an annotator's stored label has a "
                  "probability below this (0 to 1; only annotators that ask for logprobs have one); empty: off")
    review_below_agreement = models.FloatField(
        null=True, blank=True, validators=[finite, MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="send a post to the review queue (annotators_disagree) when, once every annotator of the run "
                  "has answered, the share agreeing with the majority label is below this (0 to 1); empty: off")

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def code_list(self) -> list[str]:
        return [entry["code"] for entry in self.codes]

    @property
    def answer_schema(self) -> dict:
        """The JSON schema a structured answer must follow, derived from the kind, the codes and the rules."""
        return answer_schema(self.kind, self.code_list, self.parse_rules)

    def clean(self) -> None:
        problems = {}
        for name, check in (("prompt_template", self._prompt_problem), ("codes", self._codes_problem),
                            ("parse_rules", self._parse_rules_problem), ("few_shot", self._few_shot_problem)):
            problem = check()
            if problem:
                problems[name] = problem
        if problems:
            raise ValidationError(problems)

    def _prompt_problem(self) -> str | None:
        if not isinstance(self.prompt_template, str) or PROMPT_SAMPLE_FIELD not in self.prompt_template:
            return f"The template must contain {PROMPT_SAMPLE_FIELD}."
        return None

    def _codes_problem(self) -> str | None:
        if not isinstance(self.codes, list):
            return 'Give a list of {"code": ..., "description": ...} objects.'
        if self.kind != self.Kind.STRING_LIST and not self.codes:
            return "A coded domain needs at least one code."
        if len(self.codes) > MAX_CODES:
            return f"At most {MAX_CODES} codes."
        seen = set()
        for index, entry in enumerate(self.codes, start=1):
            if not isinstance(entry, dict) or set(entry) - {"code", "description"}:
                return f'Entry {index}: an object with "code" and an optional "description", nothing else.'
            code, description = entry.get("code"), entry.get("description", "")
            if not isinstance(code, str) or not CODE.match(code):
                return (f"Entry {index}: the code must be 1-32 letters, digits, '_', '.' or '-', starting with a "
                        f"letter or digit (got {code!r:.40}).")
            if not isinstance(description, str) or len(description) > 500:
                return f"Entry {index}: the description must be text of at most 500 characters."
            if code in seen:
                return f"Entry {index}: the code {code} appears twice."
            seen.add(code)
        return None

    def _parse_rules_problem(self) -> str | None:
        rules = self.parse_rules
        if not isinstance(rules, dict):
            return "Give an object, e.g. {} or {\"none_code\": \"NONE\"}."
        allowed = PARSE_RULES.get(self.kind, {})
        for name, value in rules.items():
            if name not in allowed:
                return (f"'{name}' is not a rule of a {self.kind} domain; its rules are "
                        f"{', '.join(allowed) or 'none'}.")
            bounds = allowed[name]
            if bounds is None:
                if not isinstance(value, str) or not CODE.match(value):
                    return f"'{name}' must be a code such as NONE."
            elif isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
                return f"'{name}' must be a whole number from {bounds[0]} to {bounds[1]}."
        if rules.get("min_items", 1) > rules.get("max_items", 10):
            return "min_items must not exceed max_items."
        return None

    def _few_shot_problem(self) -> str | None:
        if not isinstance(self.few_shot, list) or len(self.few_shot) > MAX_FEW_SHOT:
            return f"Give a list of at most {MAX_FEW_SHOT} examples."
        for index, example in enumerate(self.few_shot, start=1):
            if not isinstance(example, dict) or not isinstance(example.get("message"), str) \
                    or not example["message"] or "<<" not in str(example.get("answer")):
                return f"Example {index} needs a 'message' and an 'answer' with a <<...>> marker."
        return None

    def save(self, *args, **kwargs) -> None:
        # Every change of wording gets a new version, so each stored outcome names the prompt it saw; the codes and
        # their meanings are part of that wording (the template's {codes}, the completion prompt's code list). Every
        # change of the answer's schema too, so each structured outcome names the schema it was held to.
        if self.pk is not None:
            stored = Domain.objects.filter(pk=self.pk).values(*PROMPT_FIELDS, "kind", "parse_rules").first()
            if stored is not None and any(stored[name] != getattr(self, name) for name in PROMPT_FIELDS):
                self.prompt_version += 1
            current = {"kind": self.kind, "codes": self.codes, "parse_rules": self.parse_rules}
            if stored is not None and self._schema_of(stored) != self._schema_of(current):
                self.schema_version += 1
        super().save(*args, **kwargs)

    @staticmethod
    def _schema_of(values: dict) -> dict | None:
        codes = values["codes"]
        try:
            return answer_schema(values["kind"], [entry["code"] for entry in codes], values["parse_rules"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # a row its own clean() refuses: nothing to compare


class Annotator(models.Model):
    """One LLM annotator: a model behind one API key, with its own settings."""

    class Backend(models.TextChoices):
        BUILTIN = "builtin", "built-in baseline"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"
        TRAINED = "trained", "trained baseline (TF-IDF + logistic regression)"

    number = models.PositiveSmallIntegerField(unique=True, validators=[MinValueValidator(1), MaxValueValidator(99)])
    name = models.CharField(max_length=100, validators=[no_control_characters, not_a_key])
    class BuiltinProfile(models.TextChoices):
        # The names workers_app.engine.builtin.PROFILES knows (a test keeps the two lists equal).
        REFERENCE = "reference", "reference: the lexicon as designed"
        CAUTIOUS = "cautious", "cautious: rates low mood, hopelessness, trauma, eating and substance a level higher"
        RESERVED = "reserved", "reserved: counts a concern only when two cues name it"
        BROAD = "broad", "broad: names more concerns and services"
        TERSE = "terse", "terse: names only the two main concerns"

    class RequestMode(models.TextChoices):
        CHAT = "chat", "chat"
        COMPLETION = "completion", "completion"

    class Mode(models.TextChoices):
        LIVE = "live", "live: one request per sample, answered at once"
        BATCH = "batch", "batch: many samples per provider batch, answered within 24 hours at the batch price"

    class BatchProtocol(models.TextChoices):
        OPENAI = "openai", "OpenAI-style: /files + /batches (OpenAI, Azure OpenAI, Groq, Together)"
        ANTHROPIC = "anthropic", "Anthropic-style: /messages/batches (Message Batches)"

    class Structured(models.TextChoices):
        NONE = "none", "none: free text ending in <<…>>"
        JSON_SCHEMA = "json_schema", "json_schema: response_format with the JSON schema (OpenAI, vLLM, llama.cpp)"
        JSON_OBJECT = "json_object", "json_object: JSON mode with the schema (llama-cpp-python, Together, Fireworks)"
        GRAMMAR = "grammar", "grammar: a GBNF grammar (llama.cpp and llama-cpp-python, chat and completion)"

    backend = models.CharField(
        max_length=32, choices=Backend.choices, default=Backend.BUILTIN,
        help_text="built-in: an offline keyword baseline for demos and benchmarks, not a clinical model")
    request_mode = models.CharField(
        max_length=12, choices=RequestMode.choices, default=RequestMode.CHAT,
        help_text="HTTP backend: chat (messages) for instruction-tuned models; completion (a few-shot prompt) "
                  "for base models such as the local Gemma 3 270M")
    mode = models.CharField(
        max_length=8, choices=Mode.choices, default=Mode.LIVE,
        help_text="HTTP backend: live requests, or the provider's batch API (cheaper, slower; see batch protocol)")
    batch_protocol = models.CharField(
        max_length=12, choices=BatchProtocol.choices, default=BatchProtocol.OPENAI,
        help_text="batch mode: which batch API the base URL speaks")
    batch_size = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(50_000)],
        help_text="batch mode: at most this many samples per provider batch")
    structured = models.CharField(
        max_length=12, choices=Structured.choices, default=Structured.NONE,
        help_text="HTTP backend: ask the server to constrain the answer to the domain's JSON schema (its answer is "
                  "then read as JSON), or none for free text ending in <<…>>")
    structured_fallback = models.BooleanField(
        default=False, help_text="if the server refuses the structured-output parameter, answer in free text "
                                 "(<<…>>) instead of stopping with a backend error")
    request_logprobs = models.BooleanField(
        default=False, help_text="HTTP backend: ask for token log-probabilities (logprobs) and store the chosen "
                                 "label's probability as the outcome's confidence, where the server sends them")
    answers_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_ANSWERS_PER_ITEM)],
        help_text="HTTP backend, self-consistency: ask this many answers per item (at a temperature above 0) and "
                  "store the most common label, with the share of the answers that gave it as its confidence "
                  "where the server sends no logprobs; 1: one answer")
    # Set once when the server refused structured output and the fallback is on: its workers then ask in free text.
    structured_refused = models.TextField(blank=True, editable=False)
    structured_refused_at = models.DateTimeField(null=True, blank=True, editable=False)
    max_input_chars = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(settings.MAX_SAMPLE_CHARS)], help_text="cut posts longer than this before sending (0: never); for small context windows")
    model = models.CharField(max_length=200, default="builtin-lexicon-v1",
                             validators=[no_control_characters, not_a_key])
    base_url = models.URLField(blank=True, help_text="e.g. http://127.0.0.1:8080/v1")
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Or: the NAME of an environment variable starting with LLM_KEY_ that holds the key.",
    )
    # The key staff entered, encrypted at rest (annotation_site/secret_box.py); never displayed or exported.
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    requests_per_minute = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1), MaxValueValidator(100_000)])
    temperature = models.FloatField(
        default=0.0, validators=[finite, MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(default=512, validators=[MinValueValidator(1), MaxValueValidator(32_768)])
    timeout_seconds = models.FloatField(
        default=60.0, validators=[finite, MinValueValidator(0.1), MaxValueValidator(600.0)],
        help_text="the whole call, answer included, must finish within this")
    max_retries = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(10)])
    enabled = models.BooleanField(default=True)
    builtin_latency_ms = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(60_000)], help_text="built-in backend only: simulated answer time, for demos and benchmarks")
    builtin_malformed_rate = models.FloatField(
        default=0.0, validators=[finite, MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="built-in backend only: share of deliberately malformed answers (0 to 1)")
    builtin_profile = models.CharField(
        max_length=16, choices=BuiltinProfile.choices, default=BuiltinProfile.REFERENCE,
        help_text="built-in backend only: how this annotator reads the lexicon. Synthetic variation (thresholds, "
                  "weights and a seeded one-step jitter) so that built-in annotators disagree the way real models "
                  "do; deterministic")
    budget = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0), "The budget cannot be negative."),
                    MaxValueValidator(MAX_BUDGET, f"The budget can be at most {MAX_BUDGET:,}.")],
        help_text="stop calling (its workers pause, reason budget) once its stored outcomes cost this much, in the "
                  "currency of its prices; empty: no budget")
    cache_responses = models.BooleanField(
        default=False, help_text="answer a request asked before from the response cache (no call, no cost); "
                                 "only at temperature 0, where the same request gets the same answer")
    # The trained backend's model version (a TrainedBaseline row of this annotator; 0: never trained). Written by
    # workers_app.baselines.services.train_baseline only; runs pin it with the other model settings.
    baseline_version = models.PositiveIntegerField(default=0, editable=False)
    # Set when the backend refused permanently (bad key, 401/403/400): its workers stop calling until cleared.
    backend_error = models.TextField(blank=True, editable=False)
    backend_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    KEY_DROPPED = "removed: the base URL now points at another host"

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"annotator {self.number} ({self.name})"

    def sends_stored_key_elsewhere(self) -> bool:
        """Whether saving this row would send its stored API key to another server than the one it was stored for."""
        if self.pk is None:
            return False
        stored = Annotator.objects.filter(pk=self.pk).values("base_url", "api_key_encrypted").first()
        return bool(stored and stored["api_key_encrypted"]) and not same_destination(stored["base_url"],
                                                                                      self.base_url)

    def save(self, *args, **kwargs) -> None:
        # A stored key goes only to the server it was stored for, whoever edits the URL and however (the admin, a
        # state import, the local-model switch): anyone who may point the annotator elsewhere may also type a key,
        # and must, in the same save (the new key is stored after this save).
        update_fields = kwargs.get("update_fields")
        self.api_key_dropped = (update_fields is None or "base_url" in update_fields) \
            and self.sends_stored_key_elsewhere()
        if self.api_key_dropped:
            self.api_key_encrypted, self.api_key_set_at = "", None
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "api_key_encrypted", "api_key_set_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        problems = {}
        if self.backend == self.Backend.OPENAI_COMPATIBLE and not self.base_url:
            problems["base_url"] = "An OpenAI-compatible annotator needs a base URL."
        if self.base_url:
            try:
                check_url(self.base_url)
            except OutboundRefused as exc:
                problems["base_url"] = str(exc)
            else:
                problem = url_key_problem(self.base_url)
                if problem:
                    problems["base_url"] = problem
        if self.api_key_env:
            problem = env_name_problem(self.api_key_env)
            if problem:
                problems["api_key_env"] = problem
        if self.structured != self.Structured.NONE and self.backend != self.Backend.OPENAI_COMPATIBLE:
            problems["structured"] = ("Structured output is for the OpenAI-compatible backend; the built-in "
                                      "baseline answers in free text.")
        problem = self._answers_problem()
        if problem:
            problems["answers_per_item"] = problem
        if self.mode == self.Mode.BATCH and self.backend != self.Backend.OPENAI_COMPATIBLE:
            problems["mode"] = "Batch mode is for the OpenAI-compatible backend (an HTTP provider's batch API)."
        if self.mode == self.Mode.BATCH and self.answers_per_item > 1:
            problems["answers_per_item"] = "Batch mode asks one answer per item: set answers per item to 1."
        if self.cache_responses:
            problem = self._cache_problem()
            if problem:
                problems["cache_responses"] = problem
        if problems:
            raise ValidationError(problems)

    def _answers_problem(self) -> str | None:
        if not isinstance(self.answers_per_item, int) or self.answers_per_item <= 1:
            return None  # one answer (the field's own validators refuse what is not a whole number from 1)
        if self.backend != self.Backend.OPENAI_COMPATIBLE:
            return ("Several answers per item are for the OpenAI-compatible backend: the built-in and trained "
                    "baselines give the same answer every time.")
        if not self.temperature:
            return (f"{self.answers_per_item} answers per item need a temperature above 0: at temperature 0 every "
                    "answer is the same answer. Raise the temperature or ask for 1 answer.")
        return None

    def _cache_problem(self) -> str | None:
        if self.backend != self.Backend.OPENAI_COMPATIBLE:
            return "The response cache is for the OpenAI-compatible backend (the built-in baseline costs nothing)."
        if self.temperature != 0:
            return (f"The response cache needs temperature 0: at {self.temperature:g} the same request may get "
                    "another answer. Set the temperature to 0 or turn the cache off.")
        return None

    @property
    def answers_in_process(self) -> bool:
        """The built-in and the trained baseline answer in the worker's own process: no API, no rate limit, no
        gate, many samples per message."""
        return self.backend in IN_PROCESS_BACKENDS

    @property
    def uses_cache(self) -> bool:
        return self.cache_responses and self._cache_problem() is None


IN_PROCESS_BACKENDS = (Annotator.Backend.BUILTIN, Annotator.Backend.TRAINED)
