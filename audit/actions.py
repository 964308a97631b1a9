"""Every action name the audit log knows: one list, so filters and queries never guess at spelling."""

from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    # catalogue, corpus and accounts
    SEED_DEFAULTS = "seed_defaults"
    SEED_ROLES = "seed_roles"
    IMPORT_CORPUS = "import_corpus"
    ENSURE_ADMIN = "ensure_admin"
    USE_LOCAL_GEMMA = "use_local_gemma"
    BACKEND_ERROR = "backend_error"
    CLEAR_BACKEND_ERROR = "clear_backend_error"
    STRUCTURED_REFUSED = "structured_refused"
    SET_API_KEY = "set_api_key"
    CLEAR_API_KEY = "clear_api_key"
    REENCRYPT_API_KEYS = "reencrypt_api_keys"
    CHANGE_ANNOTATOR = "change_annotator"
    TRY_ANNOTATOR = "try_annotator"
    CHANGE_DOMAIN = "change_domain"
    # cost and the response cache
    BUDGET_REACHED = "budget_reached"
    CANCEL_BATCHES = "cancel_batches"
    GOLD_CHECK_FAILED = "gold_check_failed"
    CLEAR_RESPONSE_CACHE = "clear_response_cache"
    # runs
    CREATE_RUN = "create_run"
    SWITCH_RUN = "switch_run"
    DELETE_RUN = "delete_run"
    # reference sets (labels taken to be right, to measure runs against)
    IMPORT_REFERENCE = "import_reference"
    DELETE_REFERENCE = "delete_reference"
    # the trained baseline annotator, learned from a reference set
    TRAIN_BASELINE = "train_baseline"
    # the fleet
    LAUNCH_WORKER = "launch_worker"
    PAUSE_WORKER = "pause_worker"
    RESUME_WORKER = "resume_worker"
    STOP_WORKER = "stop_worker"
    RESTART_WORKER = "restart_worker"
    FLUSH_WORKER = "flush_worker"
    RETIRE_WORKER = "retire_worker"
    MOVE_WORKER = "move_worker"
    # operations on data
    RESET_DATA = "reset_data"
    CONSOLIDATE = "consolidate"
    EXPORT_STATE = "export_state"
    IMPORT_STATE = "import_state"
    CREATE_ARCHIVE = "create_archive"
    VERIFY_ARCHIVE = "verify_archive"
    RESTORE_ARCHIVE = "restore_archive"
    PRUNE_ARCHIVE = "prune_archive"
    # the clinical review queue
    CLAIM_REVIEW = "claim_review"
    RELEASE_REVIEW = "release_review"
    ADJUDICATE_REVIEW = "adjudicate_review"
    # alerts seen on the dashboard
    ACKNOWLEDGE_ALERTS = "acknowledge_alerts"
    SNOOZE_ALERTS = "snooze_alerts"
    # edits made in the Django admin
    ADMIN_ADD = "admin_add"
    ADMIN_CHANGE = "admin_change"
    ADMIN_DELETE = "admin_delete"
    # accounts, permissions and schedules
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    USER_CHANGE = "user_change"
    GROUP_CHANGE = "group_change"
    PERMISSION_CHANGE = "permission_change"
    SCHEDULE_CHANGE = "schedule_change"
    # people in the workspace: an account, its role, whether it may log in
    ADD_PERSON = "add_person"
    CHANGE_ROLE = "change_role"
    DEACTIVATE_PERSON = "deactivate_person"
    REACTIVATE_PERSON = "reactivate_person"
    # a request the site answered with 403
    REFUSED = "refused"
    # personal API tokens (api app)
    CREATE_API_TOKEN = "create_api_token"
    REVOKE_API_TOKEN = "revoke_api_token"
