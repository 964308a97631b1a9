"""Which test file runs where: the one place that decides it (tests/test_passes.py checks every file is listed).

`.ci/run` runs the whole suite on SQLite, then again on PostgreSQL only what depends on the database engine:
audit triggers, locking and claiming, transactions, connection pooling, the real-process fleet, migrations and
query counts. Everything else (pure logic, pages, the API's contract, the browser, rate limits in Redis, the local
model) behaves the same on either database and runs once.

Independently, the files in SLOW start real processes (worker processes, agents, a model server, a browser): they
run one at a time after the quick tests, which may run in parallel (`./test.sh` decides; see there).
"""

from __future__ import annotations

POSTGRES = {
    # The real fleet: agents, worker processes, their connection pools and the store under kills and outages.
    "tests/test_fleet.py",
    "tests/test_fleet_survival.py",
    "tests/test_hosts.py",
    "tests/test_engine_worker.py",
    "tests/test_chaos.py",
    "tests/test_monitoring.py",
    "tests/test_agent_recovery.py",
    # Audit log: append-only triggers and the migration that made them.
    "tests/test_audit_log.py",
    "tests/test_audit_migration.py",
    "tests/hostile/test_audit.py",
    # Conditional updates, unique constraints and reservations that two writers race for.
    "tests/test_fleet_controls.py",
    "tests/test_review.py",
    "tests/test_runs.py",
    "tests/test_cost_budget.py",
    "tests/test_response_cache.py",
    # A hostile answer's labels must store on either database (NUL characters, lone surrogates).
    "tests/hostile/test_structured_replies.py",
    # All-or-nothing writes of many rows.
    "tests/test_import_corpus.py",
    "tests/test_state_document.py",
    "tests/test_archive_runs.py",
    "tests/test_admin_ops.py",
    # Query counts and grouped queries the pages and the API rely on.
    "tests/test_dashboard.py",
    "tests/test_samples_pages.py",
    "tests/api/test_api_basics.py",
}

ONCE = {
    "tests/api/test_api_busy.py",
    "tests/api/test_api_consolidation.py",
    "tests/api/test_api_contract.py",
    "tests/api/test_api_data.py",
    "tests/api/test_api_deploy.py",
    "tests/api/test_api_hostile.py",
    "tests/api/test_api_metrics.py",
    "tests/api/test_api_real_worker.py",
    "tests/api/test_api_settings.py",
    "tests/api/test_api_token_admin.py",
    "tests/browser/test_dashboard_browser.py",
    "tests/browser/test_review_browser.py",
    "tests/browser/test_runs_browser.py",
    "tests/browser/test_samples_browser.py",
    "tests/hostile/test_admin_forms.py",
    "tests/hostile/test_archives.py",
    "tests/hostile/test_commands.py",
    "tests/hostile/test_import.py",
    "tests/hostile/test_llm_replies.py",
    "tests/hostile/test_operations_pages.py",
    "tests/hostile/test_outbound_urls.py",
    "tests/hostile/test_state.py",
    "tests/test_admin_import.py",
    "tests/test_admin_ops_admin.py",
    "tests/test_agreement.py",
    "tests/test_api_keys.py",
    "tests/test_builtin_annotator.py",
    "tests/test_catalogue.py",
    "tests/test_concurrency.py",
    "tests/test_consolidate.py",
    "tests/test_engine_annotate.py",
    "tests/test_excel_journal.py",
    "tests/test_files_pages.py",
    "tests/test_fleiss_kappa.py",
    "tests/test_integrity.py",
    "tests/test_launcher.py",
    "tests/test_layers.py",
    "tests/test_local_llm.py",
    "tests/test_parsing.py",
    "tests/test_passes.py",
    "tests/test_rate_limit.py",
    "tests/test_request_limits.py",
    "tests/test_review_pages.py",
    "tests/test_roles.py",
    "tests/test_run_compare.py",
    "tests/test_run_scoping.py",
    "tests/test_runs_pages.py",
    "tests/test_secrets_end_to_end.py",
    "tests/test_security_audit.py",
    "tests/test_settings_checks.py",
    "tests/test_setup_commands.py",
    "tests/test_structured_grammar.py",
    "tests/test_structured_outputs.py",
    "tests/test_structured_workers.py",
}

SLOW = {
    "tests/test_fleet.py",
    "tests/test_fleet_survival.py",
    "tests/test_hosts.py",
    "tests/test_engine_worker.py",
    "tests/test_chaos.py",
    "tests/test_monitoring.py",
    "tests/test_concurrency.py",
    "tests/test_cost_budget.py",
    "tests/test_review.py",
    "tests/test_runs.py",
    "tests/test_local_llm.py",
    "tests/test_structured_workers.py",
    "tests/test_launcher.py",
    "tests/test_secrets_end_to_end.py",
    "tests/api/test_api_consolidation.py",
    "tests/api/test_api_real_worker.py",
    "tests/browser/test_dashboard_browser.py",
    "tests/browser/test_review_browser.py",
    "tests/browser/test_runs_browser.py",
    "tests/browser/test_samples_browser.py",
}
