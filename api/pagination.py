"""Limit/offset pages whose parameters are checked like every other parameter (a bad one is 422, not ignored)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
MAX_OFFSET = 10**9


class _PageParameters(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)


class CheckedPages(LimitOffsetPagination):
    default_limit = 100
    max_limit = MAX_LIMIT

    def paginate_queryset(self, queryset, request, view=None):
        checked = _PageParameters(data={k: v for k, v in request.query_params.items() if k in ("limit", "offset")})
        checked.is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "limit", "required": False, "in": "query", "description": "rows per page",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": self.default_limit}},
            {"name": "offset", "required": False, "in": "query", "description": "rows to skip",
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
        ]
