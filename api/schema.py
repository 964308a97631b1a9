"""Post-processing of the generated OpenAPI document."""

from __future__ import annotations


def require_bodies(result: dict, generator, request, public) -> dict:
    """A body that must name something (a selection, an archive name) is required. drf-spectacular cannot tell that
    from a body given as a raw schema, which our JSON endpoints use to say they refuse unknown fields."""
    for operations in result.get("paths", {}).values():
        body = operations.get("post", {}).get("requestBody")
        if body and any(media.get("schema", {}).get("required") or media.get("schema", {}).get("oneOf")
                        for media in body.get("content", {}).values()):
            body["required"] = True
    return result
