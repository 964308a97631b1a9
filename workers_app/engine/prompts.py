"""Turn a domain's template and a post into the prompt text the model sees."""

from __future__ import annotations

from workers_app.models import Domain


def render_prompt(domain: Domain, text: str) -> str:
    # str.replace, not str.format: posts and JSON examples in templates contain braces.
    codes = "\n".join(f"- {entry['code']}: {entry.get('description', '')}" for entry in domain.codes)
    return domain.prompt_template.replace("{codes}", codes).replace("{text}", text)
