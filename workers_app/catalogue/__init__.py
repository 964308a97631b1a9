"""Editing the catalogue (annotators, domains) and trying an annotator: the services and forms the admin and the
workspace share."""
