"""Turn a domain's template and a post into the prompt text the model sees."""

from __future__ import annotations

from workers_app.models import Annotator, Domain


def render_prompt(domain: Domain, text: str) -> str:
    # str.replace, not str.format: posts and JSON examples in templates contain braces.
    codes = "\n".join(f"- {entry['code']}: {entry.get('description', '')}" for entry in domain.codes)
    return domain.prompt_template.replace("{codes}", codes).replace("{text}", text)


def _one_line(text: str) -> str:
    # Completion-mode answers stop at the first newline, so the examples and the post are kept on one line.
    return " ".join(text.split())


def render_completion_prompt(domain: Domain, text: str) -> str:
    """A few-shot prompt for base (not instruction-tuned) models: examples, then the post, ending in 'Answer:'."""
    codes = "\n".join(f"- {entry['code']}: {entry.get('description', '')}" for entry in domain.codes)
    lines = [f"Coding of help-seeking posts: {domain.title}.", f"Codes:\n{codes}" if codes else "", ""]
    for example in domain.few_shot:
        lines += [f"Message: {_one_line(example['message'])}", f"Answer: {example['answer']}", ""]
    lines += [f"Message: {_one_line(text)}", "Answer:"]
    return "\n".join(line for line in lines if line is not None)


def cut_input(text: str, limit: int) -> str:
    """Posts longer than the annotator's limit are cut (the store keeps the whole post)."""
    return text if not limit or len(text) <= limit else text[:limit] + " …"


def prompt_for(annotator: Annotator, domain: Domain, text: str) -> str:
    """What ``annotator`` is sent for ``text`` in ``domain``: the post cut to its limit, in its request mode's form."""
    text = cut_input(text, annotator.max_input_chars)
    if annotator.request_mode == Annotator.RequestMode.COMPLETION:
        return render_completion_prompt(domain, text)
    return render_prompt(domain, text)
