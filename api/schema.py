"""Post-processing of the generated OpenAPI document."""

from __future__ import annotations

ACTIONS_PREFIX = "/api/v1/workers/actions/"


def require_action_bodies(result: dict, generator, request, public) -> dict:
    """An action's body (the selection) is required; drf-spectacular cannot tell that from a raw body schema."""
    for path, operations in result.get("paths", {}).items():
        if path.startswith(ACTIONS_PREFIX) and "requestBody" in operations.get("post", {}):
            operations["post"]["requestBody"]["required"] = True
    return result
