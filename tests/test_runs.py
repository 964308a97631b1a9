"""Named runs: made, switched and deleted through their services and command; pinned prompts; the fleet's real
workers keeping two runs' outcomes and consolidations side by side."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from admin_ops.services.consolidate import consolidate
from audit.models import AuditLog
from tests.helpers import make_samples, wait_until, worker
from tests.worker_processes import assert_all_ok
from workers_app.engine.annotate import RetryLater, annotate_sample
from workers_app.engine.cost import forget_cached_prices
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, queue_length
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.fleet.services import launch_worker, run_bulk
from workers_app.models import DEFAULT_RUN, Alert, Annotator, AnnotatorPrice, Domain, Outcome, Run, Worker
from workers_app.monitoring.budgets import budget_sweep
from workers_app.runs.current import current_run, forget_cached_runs, pinned_rows, run_samples
from workers_app.runs.files import adopt_legacy_workbooks, workbook_path
from workers_app.runs.services import RunPlan, RunRefused, chosen_samples, create_run, delete_run, switch_run

URGENCY = WorkerKey(1, "urgency")


def plan(name: str = "prompt-v2", **fields) -> RunPlan:
    return RunPlan(name=name, **fields)


def new_prompt(slug: str, wording: str) -> Domain:
    domain = Domain.objects.get(slug=slug)
    domain.prompt_template = f"{wording}\n{{codes}}\nPost: {{text}}"
    domain.save()
    return domain


@pytest.mark.django_db
def test_the_default_run_is_current_and_takes_every_sample(catalogue):
    ids = make_samples(5)
    run = current_run()
    assert (run.name, run.is_current, run.all_samples, run.pinned) == (DEFAULT_RUN, True, True, {})
    assert sorted(run_samples(run).values_list("pk", flat=True)) == sorted(ids)


@pytest.mark.django_db
def test_a_default_run_another_process_makes_between_two_reads_is_found_not_reported_missing(catalogue):
    """What a worker and the agent starting together on an empty store do: both read, one makes the default run."""
    from django.db import connection

    made = []

    def another_process_makes_the_default_run(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "workers_app_run" in sql and not made:
            made.append(sql)  # after the first read of the runs (none current): the other process commits its run
            Run.objects.create(name=DEFAULT_RUN, is_current=True, all_samples=True, created_by="system")
        return result

    Run.objects.all().delete()  # an empty (new or flushed) store
    forget_cached_runs()
    with connection.execute_wrapper(another_process_makes_the_default_run):
        run = current_run()
    assert made and run.name == DEFAULT_RUN and run.is_current
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_a_new_run_pins_the_prompts_and_settings_of_the_moment_and_takes_a_seeded_share(catalogue):
    make_samples(50, vary=True)
    before = Domain.objects.get(slug="urgency")
    run = create_run(plan(annotators=[1, 2], domains=["urgency"], share=0.2, seed=7), actor="tester")
    new_prompt("urgency", "Rate the urgency, carefully.")
    run.refresh_from_db()
    assert run.pinned["domains"]["urgency"]["prompt_template"] == before.prompt_template
    assert run.pinned["domains"]["urgency"]["prompt_version"] == before.prompt_version
    assert set(run.pinned["annotators"]) == {"1", "2"} and run.annotators == [1, 2] and run.domains == ["urgency"]
    assert run_samples(run).count() == 10 == run.selection["samples"]
    assert not run.is_current and run.code_version
    again = chosen_samples(plan("other", share=0.2, seed=7))
    assert sorted(run_samples(run).values_list("pk", flat=True)) == again
    assert AuditLog.objects.filter(action="create_run", result="ok", target="prompt-v2").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "Bad Name"}, "lower-case letters"),
    ({"name": "../etc"}, "lower-case letters"),
    ({"name": "pilot\n"}, "lower-case letters"),
    ({"name": DEFAULT_RUN}, "exists already"),
    ({"name": "compare"}, "reserved"),
    ({"annotators": [9]}, "no annotator 9"),
    ({"domains": ["mood"]}, "no domain mood"),
    ({"corpora": [999]}, "no corpus 999"),
    ({"share": 0.0}, "share 0.0"),
    ({"share": 1.5}, "share 1.5"),
    ({"limit": 0}, "limit 0"),
])
def test_a_bad_run_is_refused_by_name_and_nothing_is_made(catalogue, fields, message):
    make_samples(3)
    current_run()
    fields = {"name": "fine", **fields}
    with pytest.raises(RunRefused, match=message):
        create_run(RunPlan(**fields), actor="tester")
    assert list(Run.objects.values_list("name", flat=True)) == [DEFAULT_RUN]
    assert AuditLog.objects.filter(action="create_run", result="failed").count() == 1


@pytest.mark.django_db
def test_a_run_of_no_sample_is_refused(catalogue):
    with pytest.raises(RunRefused, match="takes no sample"):
        create_run(plan(), actor="tester")


@pytest.mark.django_db
def test_a_worker_of_a_run_sends_the_pinned_prompt_after_the_live_one_changed(http_annotator, fake_llm):
    [sample] = make_samples(1)
    run = create_run(plan(annotators=[1], domains=["urgency"]), actor="tester")
    pinned = run.pinned["domains"]["urgency"]
    new_prompt("urgency", "A NEW WORDING")
    annotate_sample(sample, URGENCY, worker="w", run_id=run.pk)
    sent = fake_llm.requests[-1]["body"]["messages"][0]["content"]
    assert "A NEW WORDING" not in sent and pinned["prompt_template"].split("{")[0].strip()[:30] in sent
    outcome = Outcome.objects.get(run=run)
    assert outcome.prompt_version == pinned["prompt_version"]
    # the default run follows the live catalogue
    annotate_sample(sample, URGENCY, worker="w")
    assert "A NEW WORDING" in fake_llm.requests[-1]["body"]["messages"][0]["content"]
    assert Outcome.objects.get(run__name=DEFAULT_RUN).prompt_version == pinned["prompt_version"] + 1


@pytest.mark.django_db
def test_a_runs_pinned_rows_are_copied_once_and_again_with_the_live_fields_of_a_reread_row(catalogue):
    make_samples(1)
    run = create_run(plan(annotators=[1], domains=["urgency"]), actor="tester")
    annotator, domain = Annotator.objects.get(number=1), Domain.objects.get(slug="urgency")
    first = pinned_rows(run, annotator, domain)
    assert all(made is again for made, again in zip(first, pinned_rows(run, annotator, domain), strict=True))
    Annotator.objects.filter(number=1).update(model="a-newer-model", base_url="http://127.0.0.1:9/v1")
    reread, _ = pinned_rows(run, Annotator.objects.get(number=1), domain)
    assert (reread.model, reread.base_url) == (first[0].model, "http://127.0.0.1:9/v1")


@pytest.mark.django_db
def test_one_sample_is_stored_once_per_run(catalogue):
    [sample] = make_samples(1)
    run = create_run(plan(), actor="tester")
    assert annotate_sample(sample, URGENCY, worker="w", run_id=run.pk) == "stored"
    assert annotate_sample(sample, URGENCY, worker="w", run_id=run.pk) == "already_stored"
    assert annotate_sample(sample, URGENCY, worker="w") == "stored"
    assert Outcome.objects.filter(sample=sample).count() == 2


@pytest.mark.django_db
def test_a_message_of_a_deleted_run_stores_nothing(catalogue):
    [sample] = make_samples(1)
    run = create_run(plan(), actor="tester")
    run_id = run.pk
    delete_run(run, actor="tester")
    assert annotate_sample(sample, URGENCY, worker="w", run_id=run_id) == "gone"
    assert not Outcome.objects.exists()


@pytest.mark.django_db
def test_switching_drops_the_old_runs_messages_and_queues_only_the_new_runs_samples(catalogue):
    make_samples(30)
    populate_queues(1, "urgency")
    assert queue_length(URGENCY) == 2  # the built-in baseline takes 20 samples a message
    run = create_run(plan(annotators=[1], domains=["urgency"], limit=5), actor="tester")
    switch_run(run, actor="tester")
    assert queue_length(URGENCY) == 0  # no worker is running: nothing queued yet
    assert current_run() == run
    assert populate_queues(1, "urgency") == {"annotator_1_urgency": 5}
    assert populate_queues(1, "intensity") == {"annotator_1_intensity": 0}  # the run leaves intensity out
    with pytest.raises(RunRefused, match="current run already"):
        switch_run(run, actor="tester")
    with pytest.raises(RunRefused, match="current run: make another"):
        delete_run(run, actor="tester")
    assert AuditLog.objects.filter(action="switch_run", result="ok", target="prompt-v2").count() == 1
    refused = AuditLog.objects.filter(result="failed", target="prompt-v2").values_list("action", flat=True)
    assert sorted(refused) == ["delete_run", "switch_run"]
    assert Run.objects.filter(pk=run.pk, is_current=True).exists()


@pytest.mark.django_db
def test_the_runs_command_makes_lists_switches_and_deletes_with_confirmation(catalogue):
    make_samples(10)
    out = io.StringIO()
    call_command("runs", "create", "small", "--annotator", "1", "--domain", "urgency", "--limit", "4", stdout=out)
    assert "made run small: 4 samples x 1 annotator(s) x 1 domain(s)" in out.getvalue()
    call_command("runs", "switch", "small", stdout=out)
    call_command("runs", "list", stdout=out)
    assert "* small" in out.getvalue()
    call_command("runs", "switch", DEFAULT_RUN, stdout=out)
    with pytest.raises(CommandError, match="add --yes"):
        call_command("runs", "delete", "small")
    call_command("runs", "delete", "small", "--yes", stdout=out)
    assert not Run.objects.filter(name="small").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("argv", "message"), [
    (["switch", "nope"], "no run named 'nope'"),
    (["create", "x", "--budget", "lots"], "--budget"),
    (["create", "x", "--annotator", "abc"], "annotator number"),
    (["create", "UPPER"], "lower-case letters"),
])
def test_the_runs_command_names_a_bad_argument(catalogue, argv, message):
    make_samples(2)
    with pytest.raises(CommandError, match=message):
        call_command("runs", *argv)
    assert list(Run.objects.values_list("name", flat=True)) in ([], [DEFAULT_RUN])


def _sheet_rows(path, title: str) -> list[tuple]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(book[title].iter_rows(values_only=True))
    finally:
        book.close()


@pytest.mark.django_db(transaction=True)
def test_two_runs_with_different_prompt_versions_keep_both_outcomes_and_both_consolidations(agent):
    make_samples(40, vary=True)
    rows = [worker(1, "urgency"), worker(1, "intensity")]
    results = run_bulk(launch_worker, rows, actor="test")
    assert_all_ok(results, agent)
    first = current_run()
    wait_until(lambda: Outcome.objects.filter(run=first).count() == 80, 60, "the default run's 80 outcomes")
    first_report = consolidate(actor="test")
    version = new_prompt("urgency", "Second wording of the urgency prompt.").prompt_version
    second = create_run(plan(annotators=[1], domains=["urgency", "intensity"], share=0.5, seed=3), actor="test")
    switch_run(second, actor="test")
    wait_until(lambda: Outcome.objects.filter(run=second).count() == 40, 60, "the second run's 40 outcomes")
    second_report = consolidate(actor="test", run=second)

    assert Outcome.objects.filter(run=first).count() == 80
    assert set(Outcome.objects.filter(run=first, domain__slug="urgency").values_list("prompt_version",
                                                                                     flat=True)) == {version - 1}
    assert set(Outcome.objects.filter(run=second, domain__slug="urgency").values_list("prompt_version",
                                                                                      flat=True)) == {version}
    assert first_report.path.parent == first_report.path.parents[1] / "consolidated"
    assert first_report.path.parts[-4:-2] == ("runs", DEFAULT_RUN)
    assert second_report.path.parts[-4:-2] == ("runs", "prompt-v2")
    assert first_report.path.exists() and second_report.path.exists()
    for report, run, samples in ((first_report, first, 40), (second_report, second, 20)):
        sheet = _sheet_rows(report.path, "Run")
        assert sheet[0][0] == "Run" and ("name", run.name) == sheet[1][:2]
        assert len(_sheet_rows(report.path, "urgency")) == samples + 1
        assert openpyxl.load_workbook(report.path, read_only=True).sheetnames[0] == "Run"
    wait_until(lambda: workbook_path(URGENCY, second).exists(), 90, "the second run's own workbook")
    assert workbook_path(URGENCY, first).exists() and workbook_path(URGENCY, first) != workbook_path(URGENCY, second)
    assert sum(switch_run(first, actor="test").values()) == 0  # the first run lacks nothing


@pytest.mark.django_db
def test_a_runs_budget_stops_its_calls_pauses_its_workers_alerts_once_and_resumes_when_raised(http_annotator,
                                                                                              fake_llm):
    AnnotatorPrice.objects.create(annotator=http_annotator, input_per_1k=Decimal("0.1"),
                                  output_per_1k=Decimal("0.5"), currency="USD")  # 0.016 a call
    forget_cached_prices()  # an earlier test's process-wide price cache must not hide this price
    samples = make_samples(4, vary=True)
    run = create_run(plan(annotators=[1], domains=["urgency"], budget=Decimal("0.032")), actor="tester")
    switch_run(run, actor="tester")
    ensure_worker_rows()
    Worker.objects.update(desired_state=Worker.Desired.RUNNING)
    for sample in samples[:2]:
        assert annotate_sample(sample, URGENCY, worker="w", run_id=run.pk) == "stored"
    with pytest.raises(RetryLater) as raised:
        annotate_sample(samples[2], URGENCY, worker="w", run_id=run.pk)
    assert "run prompt-v2 spent 0.032 of its budget of 0.032" in str(raised.value)
    assert len(fake_llm.requests) == 2
    paused = Worker.objects.filter(desired_state=Worker.Desired.PAUSED)
    assert [w.name for w in paused] == ["annotator_1_urgency"]  # only the run's worker
    budget_sweep()
    budget_sweep()
    [alert] = Alert.objects.filter(key="budget:run:prompt-v2")
    assert alert.resolved_at is None and "run prompt-v2 reached its budget" in alert.message
    default = Run.objects.get(name=DEFAULT_RUN)
    assert annotate_sample(samples[2], URGENCY, worker="w", run_id=default.pk) == "stored"  # no budget there
    Run.objects.filter(pk=run.pk).update(budget=Decimal(1))
    assert annotate_sample(samples[2], URGENCY, worker="w", run_id=run.pk) == "stored"
    budget_sweep()
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@pytest.mark.django_db
def test_the_admin_lists_runs_and_makes_one_current_only_for_staff_allowed_to(catalogue, client, staff,
                                                                               django_user_model):
    make_samples(4)
    run = create_run(plan(limit=2), actor="tester")
    client.force_login(staff)
    listing = client.get("/admin/workers_app/run/")
    assert listing.status_code == 200 and b"prompt-v2" in listing.content and b"make_current" in listing.content
    client.post("/admin/workers_app/run/", {"action": "make_current", "_selected_action": [run.pk]})
    assert current_run().name == "prompt-v2"

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client.force_login(viewer)
    listing = client.get("/admin/workers_app/run/")
    assert listing.status_code == 200 and b"make_current" not in listing.content
    client.post("/admin/workers_app/run/", {"action": "make_current",
                                            "_selected_action": [Run.objects.get(name=DEFAULT_RUN).pk]})
    forget_cached_runs()
    assert current_run().name == "prompt-v2"
    assert client.get(f"/admin/workers_app/run/{run.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_workbooks_from_before_runs_move_into_the_default_runs_folder_once(catalogue, settings):
    legacy = settings.ANNOTATIONS_DIR
    legacy.mkdir(parents=True, exist_ok=True)
    for name, data in (("annotator_1_urgency.xlsx", b"old book"), (".annotator_1_urgency.xlsx.journal", b"j"),
                       (".annotator_1_urgency.lock", b""), ("annotator_2_urgency.xlsx", b"older")):
        (legacy / name).write_bytes(data)
    target = workbook_path(WorkerKey(2, "urgency"), current_run())
    target.parent.mkdir(parents=True)
    target.write_bytes(b"newer, kept")
    assert adopt_legacy_workbooks() == [".annotator_1_urgency.xlsx.journal", "annotator_1_urgency.xlsx"]
    assert workbook_path(URGENCY).read_bytes() == b"old book" and target.read_bytes() == b"newer, kept"
    assert (legacy / "annotator_2_urgency.xlsx").exists() and adopt_legacy_workbooks() == []


@pytest.mark.django_db
def test_the_runs_command_compares_two_runs_and_names_what_it_cannot(catalogue):
    samples = make_samples(6, vary=True)
    run = create_run(plan(annotators=[1], domains=["urgency"]), actor="tester")
    out = io.StringIO()
    call_command("runs", "compare", DEFAULT_RUN, run.name, stdout=out)
    assert "nothing in common" in out.getvalue()
    for sample in samples:
        annotate_sample(sample, URGENCY, worker="w")
        annotate_sample(sample, URGENCY, worker="w", run_id=run.pk)
    call_command("runs", "compare", DEFAULT_RUN, run.name, stdout=out)
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("urgency")]
    assert line.split()[:4] == ["urgency", "1", "6", "100.0%"]  # the built-in baseline answers alike
    with pytest.raises(CommandError, match="compared with itself"):
        call_command("runs", "compare", run.name, run.name)
    with pytest.raises(CommandError, match="--changes -1"):
        call_command("runs", "compare", DEFAULT_RUN, run.name, "--changes", "-1")


@pytest.mark.django_db
def test_the_first_run_made_on_an_empty_store_leaves_the_default_run_current(catalogue):
    make_samples(3)
    Run.objects.all().delete()
    forget_cached_runs()
    create_run(plan(), actor="tester")
    assert current_run().name == DEFAULT_RUN
