"""System checks that turn misconfiguration into clear messages with stable ids."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from .env import PROBLEMS

# Tagged so that commands run often (`workers`) can check the environment without loading every URL and admin.
ENVIRONMENT = "environment"


@register(ENVIRONMENT)
def check_environment(app_configs, **kwargs) -> list:
    return [
        Error(
            f"{p.variable}={p.value!r} is not valid: {p.reason}.",
            hint=f"Fix or unset {p.variable}; the documented default is used meanwhile.",
            id="annotation_site.E001",
        )
        for p in PROBLEMS
    ]


@register(ENVIRONMENT)
def check_data_dir(app_configs, **kwargs) -> list:
    import os

    if not os.access(settings.DATA_DIR, os.W_OK):
        return [Error(f"DATA_DIR {settings.DATA_DIR} is not writable.", id="annotation_site.E002")]
    return []


@register(deploy=True)
def check_debug_off(app_configs, **kwargs) -> list:
    if settings.DEBUG:
        return [Warning("DEBUG is on: tracebacks are shown to visitors.", id="annotation_site.W001")]
    return []


@register(ENVIRONMENT)
def check_tls_settings(app_configs, **kwargs) -> list:
    if settings.SECURE_HSTS_SECONDS and not settings.SECURE_COOKIES:
        return [Warning("HSTS_SECONDS is set but SECURE_COOKIES is off: the session cookie may still travel over "
                        "plain HTTP.", hint="Behind TLS set SECURE_COOKIES=true as well.", id="annotation_site.W002")]
    return []
