"""The clinical review queue: which samples a clinician must read first (flags) and the reviewer's steps
(services)."""
