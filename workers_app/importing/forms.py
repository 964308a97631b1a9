"""The import options every import form offers (the admin's, the workspace's): how bad rows and cut cells are
treated. The service (``import_corpus``) decides what they mean."""

from __future__ import annotations

from django import forms


class ImportOptions(forms.Form):
    skip_invalid = forms.BooleanField(required=False, help_text="import the valid rows and list the skipped ones")
    allow_cut_cells = forms.BooleanField(
        required=False, help_text="xlsx only: import texts of exactly 32,767 characters, the most a cell holds "
        "(probably cut when the file was saved), with a warning instead of refusing them")
