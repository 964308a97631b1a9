"""Named runs, in one place: which samples, annotators and domains a run takes, with which prompts and settings.

- ``current``: which run the fleet works on, and the catalogue rows as a run pinned them (read by the engine);
- ``files``: a run's folder, workbooks and consolidations on each host;
- ``services``: make a run, make one current, delete one (each audited);
- ``definitions``: a run as a record in archives and state documents, checked before anything is written;
- ``compare``: two runs side by side; ``record``: what a run came from, for its consolidated workbook.

The ``Run`` model lives with the other models (workers_app.models.runs); the admin, the ``runs`` command and the
workspace's run pages are thin adapters over these modules.
"""
