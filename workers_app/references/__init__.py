"""Reference sets, in one place: labels taken to be right, against which runs are measured.

- ``options``: the layout of a file (wide: a column per domain; long: a domain and a label column) and the value
  map, parsed from what a user typed, checked against the catalogue before any file is read;
- ``importer``: ``import_reference`` and ``delete_reference`` (each audited; every row checked first, nothing
  written on any error, the same import again a no-op), over the corpus reader (workers_app.importing);
- ``adjudicated``: the review queue's adjudications as a set of their own, kept current as reviewers record them;
- ``selectors``: the sets and their labels as the quality pages, the API and the exports read them;
- ``definitions``: a set as a record in archives and state documents, checked before anything is written.

The models live with the others (workers_app.models.reference); the pure statistics in stats.quality.
"""
