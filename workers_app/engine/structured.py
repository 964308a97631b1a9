"""Structured outputs: how an annotator asks its server for an answer that follows the domain's JSON schema.

Per annotator (``Annotator.structured``), the request carries:
- ``json_schema``: ``response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``
  (OpenAI, vLLM, llama.cpp's server, LiteLLM, Gemini's compatible API); in completion mode also llama.cpp's own
  ``json_schema`` field;
- ``json_object``: ``response_format: {"type": "json_object", "schema": …}``, JSON mode with the schema as
  llama-cpp-python's server, llama.cpp's server, Together and Fireworks take it (a server that knows only JSON mode
  ignores the schema; the answer is validated all the same); in completion mode also ``json_schema``;
- ``grammar``: a GBNF grammar (engine/grammar.py) that llama.cpp's and llama-cpp-python's servers take in both
  modes: the only form llama-cpp-python's server (0.3.36) honours in completion mode, where it ignores the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from workers_app.models import Annotator, Domain
from workers_app.models.answer_schema import ANSWER_KEY

from .grammar import answer_grammar

NONE = Annotator.Structured.NONE
# Words a server's error names when it refuses one of these parameters (checked case-insensitively); not a bare
# "schema", which a 500 about anything else may say.
PARAMETER_WORDS = {
    Annotator.Structured.JSON_SCHEMA: ("response_format", "json_schema", "json schema"),
    Annotator.Structured.JSON_OBJECT: ("response_format", "json_object", "json_schema", "json schema"),
    Annotator.Structured.GRAMMAR: ("grammar", "gbnf"),
}
SENT_AS = {Annotator.Structured.JSON_SCHEMA: "response_format", Annotator.Structured.JSON_OBJECT: "response_format",
           Annotator.Structured.GRAMMAR: "grammar"}


@dataclass(frozen=True)
class AnswerFormat:
    """What one request asks for: the domain's schema (and grammar) sent in the annotator's structured mode."""

    mode: str
    domain: Domain

    @property
    def schema(self) -> dict:
        return self.domain.answer_schema

    @property
    def schema_version(self) -> int:
        return self.domain.schema_version

    @cached_property
    def grammar(self) -> str:
        return answer_grammar(self.domain.kind, self.domain.code_list, self.domain.parse_rules)

    @property
    def ends_itself(self) -> bool:
        """The server stops where the answer is complete: our grammar is one line and ends with the object."""
        return self.mode == Annotator.Structured.GRAMMAR

    @property
    def sent_as(self) -> str:
        return SENT_AS[self.mode]

    def request_fields(self, *, completion: bool) -> dict:
        """The fields this format adds to a chat or completion request body."""
        if self.mode == Annotator.Structured.GRAMMAR:
            return {"grammar": self.grammar}
        if self.mode == Annotator.Structured.JSON_SCHEMA:
            response_format = {"type": "json_schema", "json_schema": {
                "name": f"{self.domain.slug}_answer", "schema": self.schema, "strict": True}}
        else:
            response_format = {"type": "json_object", "schema": self.schema}
        return {"response_format": response_format, **({"json_schema": self.schema} if completion else {})}

    def names_the_parameter(self, message: str) -> bool:
        """Whether a server's error message is about this format's parameter."""
        lowered = message.lower()
        return any(word in lowered for word in PARAMETER_WORDS[self.mode])

    def cache_part(self) -> list:
        """What of this format shapes the answer, for the response cache's key."""
        return [self.mode, json.dumps(self.schema, sort_keys=True)]


def answer_format(annotator: Annotator, domain: Domain) -> AnswerFormat | None:
    """The format a request of this annotator asks for in this domain; None for free text: structured output off,
    the built-in baseline, or a server that refused it once while staff allowed the fallback."""
    if annotator.structured == NONE or annotator.backend != Annotator.Backend.OPENAI_COMPATIBLE:
        return None
    if annotator.structured_refused and annotator.structured_fallback:
        return None
    return AnswerFormat(annotator.structured, domain)


def structured_text(kind: str, labels: tuple[str, ...] | list[str]) -> str:
    """A valid answer as the grammar writes it: the form few-shot examples show in structured mode."""
    value = labels[0] if kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL) else list(labels)
    return json.dumps({ANSWER_KEY: value}, ensure_ascii=False)


def answer_instruction(domain: Domain) -> str:
    """The sentence a chat prompt ends with in structured mode (the template asks for a <<…>> marker)."""
    if domain.kind in (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL):
        shape = '{"answer": "<one code>"}'
    elif domain.kind == Domain.Kind.CODE_SET:
        none_code = domain.parse_rules.get("none_code")
        shape = '{"answer": ["<code>", ...]}' + (f' or {{"answer": ["{none_code}"]}}' if none_code else "")
    else:
        shape = '{"answer": ["<a few words>", ...]}'
    return f"Reply with a JSON object only, not a <<...>> marker: {shape}"
