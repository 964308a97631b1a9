"""Turn a domain's template and a post into the prompt text the model sees, for a free-text or a structured answer."""

from __future__ import annotations

from workers_app.models import Annotator, Domain

from .parsing import parse_answer
from .structured import answer_instruction, structured_text


def _code_lines(domain: Domain) -> str:
    return "\n".join(f"- {entry['code']}: {entry.get('description', '')}" for entry in domain.codes)


def render_prompt(domain: Domain, text: str, *, structured: bool = False) -> str:
    # str.replace, not str.format: posts and JSON examples in templates contain braces.
    prompt = domain.prompt_template.replace("{codes}", _code_lines(domain)).replace("{text}", text)
    # The template asks for a <<…>> marker; a structured request says last what the schema will hold it to.
    return f"{prompt}\n\n{answer_instruction(domain)}" if structured else prompt


def _one_line(text: str) -> str:
    # Completion-mode answers stop at the first newline, so the examples and the post are kept on one line.
    return " ".join(text.split())


def _example_answer(domain: Domain, answer: str, structured: bool) -> str | None:
    """An example's answer as the request asks for it: its <<…>> marker, or the same labels as JSON (None: the
    marker does not parse, so it cannot teach the JSON form)."""
    if not structured:
        return answer
    parsed = parse_answer(answer, kind=domain.kind, codes=domain.code_list, rules=domain.parse_rules)
    return structured_text(domain.kind, parsed.labels) if parsed.ok else None


def render_completion_prompt(domain: Domain, text: str, *, structured: bool = False) -> str:
    """A few-shot prompt for base (not instruction-tuned) models: examples, then the post, ending in 'Answer:'."""
    codes = _code_lines(domain)
    lines = [f"Coding of help-seeking posts: {domain.title}.", f"Codes:\n{codes}" if codes else "", ""]
    for example in domain.few_shot:
        answer = _example_answer(domain, example["answer"], structured)
        if answer is not None:
            lines += [f"Message: {_one_line(example['message'])}", f"Answer: {answer}", ""]
    lines += [f"Message: {_one_line(text)}", "Answer:"]
    return "\n".join(line for line in lines if line is not None)


def cut_input(text: str, limit: int) -> str:
    """Posts longer than the annotator's limit are cut (the store keeps the whole post)."""
    return text if not limit or len(text) <= limit else text[:limit] + " …"


def prompt_for(annotator: Annotator, domain: Domain, text: str, *, structured: bool = False) -> str:
    """What ``annotator`` is sent for ``text`` in ``domain``: the post cut to its limit, in its request mode's form;
    ``structured``: the answer is held to the domain's schema."""
    text = cut_input(text, annotator.max_input_chars)
    render = render_completion_prompt if annotator.request_mode == Annotator.RequestMode.COMPLETION else render_prompt
    return render(domain, text, structured=structured)
