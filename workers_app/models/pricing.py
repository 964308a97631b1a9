"""What an annotator's tokens cost (versioned by date) and the answers a deterministic model gave before."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .catalogue import Annotator

CURRENCY = re.compile(r"^[A-Z]{3}$")
# Prices per 1,000 tokens with 6 decimals make a call's cost exact at 9 decimals (tokens x price / 1000).
PRICE_PLACES = 6
COST_PLACES = 9
MAX_PRICE = Decimal(1000)


def currency_code(value: str) -> None:
    if not CURRENCY.match(value or ""):
        raise ValidationError("Enter a three-letter ISO 4217 currency code in capitals, e.g. USD or EUR.")


def cost_field(**options) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=COST_PLACES, **options)


class AnnotatorPrice(models.Model):
    """The price of an annotator's tokens from ``valid_from`` until the next version: a call is charged at the
    price valid on its day, so a new price never changes a stored cost."""

    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="prices")
    valid_from = models.DateField(default=timezone.localdate)
    input_per_1k = models.DecimalField(
        max_digits=12, decimal_places=PRICE_PLACES, validators=[MinValueValidator(0), MaxValueValidator(MAX_PRICE)],
        help_text="price of 1,000 prompt tokens")
    output_per_1k = models.DecimalField(
        max_digits=12, decimal_places=PRICE_PLACES, validators=[MinValueValidator(0), MaxValueValidator(MAX_PRICE)],
        help_text="price of 1,000 completion tokens")
    # Prompt-cache tokens, where a provider reports them: empty means the input price, never 0 unless set to 0.
    cache_read_per_1k = models.DecimalField(
        max_digits=12, decimal_places=PRICE_PLACES, null=True, blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_PRICE)],
        help_text="price of 1,000 prompt tokens read from the provider's prompt cache; empty: the input price")
    cache_write_per_1k = models.DecimalField(
        max_digits=12, decimal_places=PRICE_PLACES, null=True, blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_PRICE)],
        help_text="price of 1,000 prompt tokens written to the provider's prompt cache; empty: the input price")
    currency = models.CharField(max_length=3, default="USD", validators=[currency_code])
    batch_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(50),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="batch mode: what batch tokens cost, in percent of these prices (OpenAI's and Anthropic's batch "
                  "APIs charge half at the time of writing; check the provider's price page)")

    class Meta:
        ordering = ["annotator", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["annotator", "valid_from"], name="one_price_per_day")]

    def __str__(self) -> str:
        return (f"{self.annotator}: {self.input_per_1k} / {self.output_per_1k} {self.currency} per 1k tokens "
                f"from {self.valid_from}")

    def clean(self) -> None:
        # Budgets and totals are sums in one currency.
        others = AnnotatorPrice.objects.filter(annotator_id=self.annotator_id).exclude(pk=self.pk)
        used = others.exclude(currency=self.currency).values_list("currency", flat=True).first()
        if self.annotator_id and used:
            raise ValidationError({"currency": f"This annotator's other prices are in {used}: one currency per "
                                               "annotator, so its budget and totals add up."})


class CachedResponse(models.Model):
    """One answer of a deterministic model (temperature 0) to one exact request, kept across resets."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of model, mode, URL, prompt and settings")
    # Who filled it, and what it was asked of: the scopes a clear works by.
    annotator = models.ForeignKey(Annotator, null=True, on_delete=models.SET_NULL, related_name="cached_responses")
    model = models.CharField(max_length=200)
    base_url = models.URLField()
    request_mode = models.CharField(max_length=12)
    text = models.TextField()
    answered_by = models.CharField(max_length=200, help_text="the model name the server reported")
    latency_ms = models.PositiveIntegerField()
    prompt_tokens = models.PositiveIntegerField(null=True)
    completion_tokens = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["model"], name="cached_response_by_model")]

    def __str__(self) -> str:
        return f"{self.model} @ {self.base_url}: {self.key[:12]}"
