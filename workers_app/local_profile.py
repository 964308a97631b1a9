"""The local-gemma annotator profile: point an annotator at the local llama.cpp server in completion mode."""

from __future__ import annotations

from django.conf import settings

from annotation_site.local_llm import MODEL_ALIAS
from audit.actions import Action
from audit.actors import Actor
from audit.services import audited

from .models import Annotator

LOCAL_GEMMA = {
    "backend": Annotator.Backend.OPENAI_COMPATIBLE, "model": MODEL_ALIAS,
    "request_mode": Annotator.RequestMode.COMPLETION,
    # Constrained by a grammar (the form llama-cpp-python's server honours in completion mode): no malformed
    # answers. 64 tokens hold the longest code set (all eight adjunct codes: 52 tokens with Gemma's tokenizer).
    "structured": Annotator.Structured.GRAMMAR,
    "api_key_env": "", "temperature": 0.0, "max_tokens": 64, "timeout_seconds": 60.0, "max_input_chars": 2000,
    "requests_per_minute": 600,
}


def use_local_gemma(annotator: Annotator, *, actor: Actor) -> None:
    """Switch the annotator to the local model (its previous settings are in the audit row). A stored key stays
    with the server it was given for: the local model needs none, so it is removed (the key rules)."""
    before = {name: getattr(annotator, name) for name in (*LOCAL_GEMMA, "base_url")}
    parameters = {"before": before, "stored_key_removed": bool(annotator.api_key_encrypted)}
    with audited(Action.USE_LOCAL_GEMMA, actor=actor, target=str(annotator), parameters=parameters):
        for name, value in {**LOCAL_GEMMA, "base_url": settings.LOCAL_LLM_URL}.items():
            setattr(annotator, name, value)
        annotator.backend_error = annotator.structured_refused = ""
        annotator.api_key_encrypted, annotator.api_key_set_at = "", None
        annotator.save()
