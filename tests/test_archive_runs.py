"""Archives and named runs: a restore gives back every run with its settings, members, outcomes and workbooks; an
archive of one run holds and restores that run only; the current run changes only on a store without work."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from admin_ops.models import Archive
from admin_ops.services.archive import ArchiveError, create_archive
from admin_ops.services.reset import reset_data
from admin_ops.services.restore import restore_archive
from admin_ops.services.snapshot import malformed_lines, outcomes_lines
from audit.actions import Action
from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.models import DEFAULT_RUN, Annotator, Corpus, Outcome, Run, Sample
from workers_app.runs.current import current_run, forget_cached_runs
from workers_app.runs.files import workbook_path
from workers_app.runs.services import RunPlan, create_run, delete_run, switch_run

pytestmark = pytest.mark.django_db

DEFAULT_KEYS = [WorkerKey(1, "urgency"), WorkerKey(2, "adjunct")]
PILOT_KEY = WorkerKey(1, "urgency")


@pytest.fixture
def two_runs(catalogue) -> Run:
    """The default run's outcomes of two workers over 6 samples, then a current run 'pilot' of 3 samples whose
    worker 1/urgency ran at another temperature; each with its workbooks."""
    Annotator.objects.update(builtin_malformed_rate=0.2, max_retries=1)
    samples = make_samples(6, vary=True)
    for key in DEFAULT_KEYS:
        for sample in samples:
            annotate_sample(sample, key, worker="w")
        flush_workbook(key)
    Annotator.objects.filter(number=1).update(temperature=0.3)
    pilot = create_run(RunPlan(name="pilot", description="a trial", annotators=[1], domains=["urgency"], limit=3,
                               budget="2.5"), actor="test")
    switch_run(pilot, actor="test")
    for sample in pilot.samples.values_list("pk", flat=True):
        annotate_sample(sample, PILOT_KEY, worker="w", run_id=pilot.pk)
    flush_workbook(PILOT_KEY, run=pilot)
    return Run.objects.get(pk=pilot.pk)


def digest(lines) -> str:
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def workbooks() -> dict[str, str]:
    return {str(path.relative_to(settings.DATA_DIR)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((settings.DATA_DIR / "runs").rglob("*.xlsx"))}


def definition(run: Run) -> tuple:
    return (run.description, run.all_samples, run.selection, run.annotators, run.domains, run.pinned,
            run.code_version, run.budget, run.created_by, run.created_at, run.started_at,
            sorted(run.samples.values_list("external_id", flat=True)))


def members(archive: Archive) -> dict[str, bytes]:
    with tarfile.open(settings.ARCHIVES_DIR / archive.file_name) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_factory_reset_and_restore_give_back_every_run_its_outcomes_and_workbooks(two_runs):
    outcomes, malformed, files = digest(outcomes_lines()), digest(malformed_lines()), workbooks()
    runs = {run.name: definition(run) for run in Run.objects.all()}
    assert set(files) == {"runs/default/annotations/annotator_1_urgency.xlsx",
                          "runs/default/annotations/annotator_2_adjunct.xlsx",
                          "runs/pilot/annotations/annotator_1_urgency.xlsx"}
    archive = create_archive("everything", actor="test")
    reset_data(actor="test", factory=True, backup=False)
    assert (Run.objects.count(), Outcome.objects.count(), workbooks()) == (0, 0, {})

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert (sorted(plan.runs), plan.current) == ([DEFAULT_RUN, "pilot"], "pilot")
    assert {run.name: definition(run) for run in Run.objects.all()} == runs
    assert Run.objects.get(name="pilot").pinned["annotators"]["1"]["temperature"] == 0.3
    assert (digest(outcomes_lines()), digest(malformed_lines()), workbooks()) == (outcomes, malformed, files)
    forget_cached_runs()
    assert current_run().name == "pilot"
    assert AuditLog.objects.filter(action=Action.SWITCH_RUN, target="pilot").count() == 2


def test_an_archive_of_one_run_holds_only_that_run(two_runs):
    archive = create_archive("pilot-only", actor="test", run="pilot")
    found = members(archive)

    assert json.loads(found["manifest.json"])["run"] == "pilot"
    assert [json.loads(line)["name"] for line in found["data/runs.jsonl"].decode().splitlines()] == ["pilot"]
    assert {json.loads(line)["run"] for line in found["data/outcomes.jsonl"].decode().splitlines()} == {"pilot"}
    assert found["data/outcomes.jsonl"].decode() == "".join(outcomes_lines(two_runs))
    assert found["data/samples.jsonl"].count(b"\n") == 3
    assert sorted(name for name in found if name.endswith(".xlsx")) == [
        "runs/pilot/annotations/annotator_1_urgency.xlsx"]
    assert archive.counts["outcomes"] == 3


def test_restoring_the_archive_of_one_run_touches_only_that_run(two_runs):
    archive = create_archive("pilot-only", actor="test", run="pilot")
    pilot = definition(two_runs)
    pilot_outcomes, pilot_workbook = digest(outcomes_lines(two_runs)), workbook_path(PILOT_KEY, two_runs).read_bytes()
    default = Run.objects.get(name=DEFAULT_RUN)
    switch_run(default, actor="test")
    delete_run(Run.objects.get(name="pilot"), actor="test")
    others = digest(outcomes_lines()), workbooks()

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert (plan.only_run, plan.runs, plan.outcomes, plan.current) == ("pilot", ["pilot"], 3, None)
    restored = Run.objects.get(name="pilot")
    assert definition(restored) == pilot and not restored.is_current
    assert digest(outcomes_lines(restored)) == pilot_outcomes
    assert workbook_path(PILOT_KEY, restored).read_bytes() == pilot_workbook
    assert digest(outcomes_lines(default)) == others[0]
    assert {k: v for k, v in workbooks().items() if not k.startswith("runs/pilot/")} == others[1]
    assert Run.objects.get(is_current=True) == default


def test_a_restore_keeps_the_current_run_of_a_store_with_work(two_runs):
    archive = create_archive("pilot-current", actor="test")
    switch_run(Run.objects.get(name=DEFAULT_RUN), actor="test")  # the default run has outcomes
    delete_run(Run.objects.get(name="pilot"), actor="test")

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert (plan.runs, plan.current) == (["pilot"], None)
    assert Run.objects.get(is_current=True).name == DEFAULT_RUN


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_restore_makes_the_archives_current_run_current_over_an_empty_default_run(two_runs):
    archive = create_archive("pilot-current", actor="test")
    reset_data(actor="test", factory=True, backup=False)
    assert current_run().name == DEFAULT_RUN  # made again on first use, without outcomes

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert (plan.runs, plan.current) == (["pilot"], "pilot")
    assert Run.objects.get(is_current=True).name == "pilot"


def test_restoring_an_archive_twice_adds_nothing_the_second_time(two_runs):
    archive = create_archive("twice", actor="test")
    path = settings.ARCHIVES_DIR / archive.file_name
    before = digest(outcomes_lines()), Run.objects.count(), Sample.objects.count()

    plan = restore_archive(path, actor="test")

    assert (plan.runs, plan.outcomes, plan.malformed, plan.samples, plan.workbooks, plan.current) == (
        [], 0, 0, 0, [], None)
    assert (digest(outcomes_lines()), Run.objects.count(), Sample.objects.count()) == before


def test_the_archive_command_writes_the_archive_of_one_run(two_runs, capsys):
    call_command("archive", "by-command", "--run", "pilot")

    assert "3 outcomes" in capsys.readouterr().out
    assert json.loads(members(Archive.objects.get(name="by-command"))["manifest.json"])["run"] == "pilot"
    call_command("verify_archive", str(settings.ARCHIVES_DIR / "by-command.tar.gz"))
    assert "(version 3, run pilot only)" in capsys.readouterr().out


def test_an_archive_of_an_unknown_run_is_refused_by_name_and_nothing_is_written(two_runs):
    with pytest.raises(CommandError, match="no run named 'ghost'; the runs are default, pilot"):
        call_command("archive", "of-a-ghost", "--run", "ghost")
    with pytest.raises(ArchiveError, match="no run named '../x'"):
        create_archive("of-a-path", actor="test", run="../x")

    assert not Archive.objects.exists() and not list(settings.ARCHIVES_DIR.glob("of-a-*"))
    assert AuditLog.objects.filter(action=Action.CREATE_ARCHIVE, result=AuditLog.Result.FAILED).count() == 2


def test_an_archive_is_made_and_restored_while_no_run_is_current(catalogue):
    """A store whose runs lost their current one (none of the services leaves it so; a hand edit could): the
    archive is still made, and its restore into an empty store makes the default run current."""
    make_samples(3, vary=True)
    create_run(RunPlan(name="first", limit=2), actor="test")
    Run.objects.update(is_current=False)
    forget_cached_runs()
    archive = create_archive("no-current", actor="test")
    assert json.loads(members(archive)["state.json"])["progress"] == {}
    for model in (Run, Sample, Corpus):  # the store a factory reset leaves (the reset itself wants a current run)
        model.objects.all().delete()
    forget_cached_runs()

    plan = restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    assert (sorted(plan.runs), plan.current) == ([DEFAULT_RUN, "first"], DEFAULT_RUN)
    assert Run.objects.get(is_current=True).name == DEFAULT_RUN
    assert Run.objects.get(name="first").samples.count() == 2
