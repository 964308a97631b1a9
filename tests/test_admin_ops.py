"""Reset, archive / verify / restore and state export / import."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from admin_ops.models import Archive
from admin_ops.services.archive import ArchiveError, create_archive, verify_archive
from admin_ops.services.reset import ResetRefused, reset_data
from admin_ops.services.restore import restore_archive
from admin_ops.services.snapshot import outcomes_lines
from admin_ops.services.state import StateError, export_state, import_state
from audit.actions import Action
from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.engine.queues import populate_queues, queue_length
from workers_app.models import Annotator, Domain, MalformedAttempt, Outcome, Sample, Worker
from workers_app.runs.files import workbook_path

pytestmark = pytest.mark.django_db

KEYS = [WorkerKey(1, "urgency"), WorkerKey(2, "adjunct"), WorkerKey(3, "urgency")]


@pytest.fixture
def annotated(catalogue):
    Annotator.objects.update(builtin_malformed_rate=0.2, max_retries=1)
    samples = make_samples(12, vary=True)
    for key in KEYS:
        for sample in samples:
            annotate_sample(sample, key, worker="w")
        flush_workbook(key)


def digest_of_outcomes() -> str:
    return hashlib.sha256("".join(outcomes_lines()).encode()).hexdigest()


def workbook_digests() -> dict[str, str]:
    return {workbook_path(k).name: hashlib.sha256(workbook_path(k).read_bytes()).hexdigest() for k in KEYS if workbook_path(k).exists()}


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_archive_factory_reset_restore_gives_back_identical_outcomes_and_workbooks(annotated):
    outcomes, workbooks = digest_of_outcomes(), workbook_digests()
    malformed = MalformedAttempt.objects.count()
    assert len(workbooks) == 3 and malformed > 0
    archive = create_archive("round-trip", actor="test")
    reset_data(actor="test", factory=True, backup=False)
    assert (Outcome.objects.count(), Sample.objects.count(), workbook_digests()) == (0, 0, {})
    path = settings.ARCHIVES_DIR / archive.file_name
    assert restore_archive(path, actor="test", dry_run=True).outcomes == 36
    assert Outcome.objects.count() == 0  # a dry run changes nothing
    restore_archive(path, actor="test")
    assert digest_of_outcomes() == outcomes and workbook_digests() == workbooks
    assert MalformedAttempt.objects.count() == malformed


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_restore_gives_back_the_reviewers_adjudications_the_costs_and_confidences(annotated, staff):
    from decimal import Decimal

    from workers_app.models import ReviewItem
    from workers_app.review.services import adjudicate_review, claim_review

    sample = Sample.objects.order_by("id").first()
    Outcome.objects.filter(sample=sample).update(cost=Decimal("0.0125"), confidence=0.42)
    item = ReviewItem.objects.create(sample=sample, reasons=["level_4"], risk=100)
    claim_review(item, actor_user=staff)
    adjudicate_review(ReviewItem.objects.get(pk=item.pk), labels={"urgency": ["LEVEL_3"]}, note="called them",
                      actor_user=staff)
    costs = digest_of_outcomes()
    archive = create_archive("with-review", actor="test")
    reset_data(actor="test", factory=True, backup=False)
    assert not ReviewItem.objects.exists()
    path = settings.ARCHIVES_DIR / archive.file_name
    assert restore_archive(path, actor="test", dry_run=True).review == 1
    restore_archive(path, actor="test")
    back = ReviewItem.objects.get(sample__external_id=sample.external_id)
    assert (back.status, back.adjudicated, back.note, back.reviewed_by) == ("reviewed", {"urgency": ["LEVEL_3"]},
                                                                          "called them", staff)
    assert digest_of_outcomes() == costs
    assert Outcome.objects.filter(cost=Decimal("0.0125"), confidence=0.42).count() == 3


def _tar_with(path, name: str, *, symlink: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if symlink:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))


@pytest.mark.parametrize(("name", "symlink", "reason"), [
    ("../x", False, "path with '..'"), ("/tmp/evil", False, "absolute path"), ("workbooks/link", True, "link")])
def test_an_unsafe_member_is_refused_by_name_and_nothing_is_written(catalogue, tmp_path, name, symlink, reason):
    bad = tmp_path / "bad.tar.gz"
    _tar_with(bad, name, symlink=symlink)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    with pytest.raises(ArchiveError, match=rf"{name}: refused \({reason}\)"):
        restore_archive(bad, actor="test")
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before and Sample.objects.count() == 0


def test_a_tampered_archive_fails_verification_and_restore_names_the_member(annotated, tmp_path):
    archive = create_archive("honest", actor="test")
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(settings.ARCHIVES_DIR / archive.file_name) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "data/outcomes.jsonl":
                data = data.replace(b'"ok"', b'"malformed"', 1)
            out.addfile(member, io.BytesIO(data))
    assert verify_archive(tampered).problems == ["data/outcomes.jsonl: checksum mismatch"]
    with pytest.raises(CommandError, match="data/outcomes.jsonl: checksum mismatch"):
        call_command("restore_archive", str(tampered))
    call_command("verify_archive", str(settings.ARCHIVES_DIR / archive.file_name))


def test_a_bad_archive_name_or_a_duplicate_is_refused(catalogue):
    with pytest.raises(ArchiveError, match="use 1-100 letters"):
        create_archive("../escape", actor="test")
    create_archive("once", actor="test")
    with pytest.raises(ArchiveError, match="exists already"):
        create_archive("once", actor="test")
    assert Archive.objects.count() == 1


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_resetting_one_domain_leaves_every_other_worker_untouched(annotated):
    make_samples(5, text="queued later", vary=True)
    populate_queues(3, "urgency")
    populate_queues(2, "adjunct")
    other = {k: (Outcome.objects.filter(annotator__number=k.annotator, domain__slug=k.domain).count(),
                 hashlib.sha256(workbook_path(k).read_bytes()).hexdigest()) for k in KEYS[1:2]}
    adjunct_queue = queue_length(WorkerKey(2, "adjunct"))
    reset_data(actor="test", domain="urgency", backup=False)
    assert not Outcome.objects.filter(domain__slug="urgency").exists()
    assert not workbook_path(WorkerKey(1, "urgency")).exists() and not workbook_path(WorkerKey(3, "urgency")).exists()
    assert queue_length(WorkerKey(3, "urgency")) == 0
    for key, (count, digest) in other.items():
        assert Outcome.objects.filter(annotator__number=key.annotator, domain__slug=key.domain).count() == count
        assert hashlib.sha256(workbook_path(key).read_bytes()).hexdigest() == digest
    assert queue_length(WorkerKey(2, "adjunct")) == adjunct_queue > 0


# Committed: a reset retires the workers from several threads (run_bulk), each with a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_a_reset_archives_first_unless_told_not_to(annotated):
    report = reset_data(actor="test", annotator=1, backup=True, keep_excel=True)
    assert report.archive.startswith("before-reset-") and Archive.objects.filter(name=report.archive).exists()
    assert workbook_path(WorkerKey(1, "urgency")).exists()  # --keep-excel


def test_a_reset_without_scope_or_a_factory_reset_by_a_non_superuser_is_refused(catalogue, django_user_model):
    with pytest.raises(ResetRefused, match="say what to reset"):
        reset_data(actor="test")
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    with pytest.raises(PermissionDenied):
        reset_data(actor=clerk, factory=True)


def test_a_state_export_round_trips_and_never_holds_a_key(catalogue, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_KEY_ANNOTATOR_ONE", "sk-very-secret")
    Annotator.objects.filter(number=1).update(api_key_env="LLM_KEY_ANNOTATOR_ONE")
    path = tmp_path / "state.json"
    text = export_state(actor="test", target=str(path), destination=path)
    assert text == path.read_text()
    assert "sk-very-secret" not in text and "LLM_KEY_ANNOTATOR_ONE" in text
    Annotator.objects.filter(number=2).update(model="changed-model")
    Worker.objects.filter(annotator__number=1, domain__slug="urgency").update(desired_state="paused")
    plan = import_state(text, source="state.json", actor="test", dry_run=True)
    assert "annotator 2.model: 'changed-model' -> 'builtin-lexicon-v1'" in plan.changes
    assert Annotator.objects.get(number=2).model == "changed-model"
    import_state(text, source="state.json", actor="test")
    assert Annotator.objects.get(number=2).model == "builtin-lexicon-v1"
    assert Worker.objects.get(annotator__number=1, domain__slug="urgency").desired_state == "stopped"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(version=5), "this console reads versions 1, 2, 3 and 4, the file is version 5"),
    (lambda d: d.update(format="other"), "format: expected 'annotation-fleet-state'"),
    (lambda d: d["catalogue"]["annotators"][0].update(max_tokens="many"),
     "annotators[0].max_tokens: expected a whole number, got text"),
    (lambda d: d["workers"][0].update(desired_state="dancing"), "workers[0].desired_state: expected one of"),
    (lambda d: d["catalogue"]["domains"][0].pop("codes"), "domains[0]: missing field 'codes'"),
])
def test_an_invalid_state_file_changes_nothing_and_says_why(catalogue, change, message):
    document = json.loads(export_state(actor="test", target="memory"))
    document["catalogue"]["annotators"][1]["model"] = "would-change"
    change(document)
    with pytest.raises(StateError, match=message.replace("(", r"\(").replace("[", r"\[")):
        import_state(json.dumps(document), source="state.json", actor="test")
    assert Annotator.objects.get(number=2).model == "builtin-lexicon-v1"
    assert Domain.objects.count() == 6
    assert list(AuditLog.objects.filter(action=Action.IMPORT_STATE).values_list("result", flat=True)) == ["failed"]


def test_an_import_adds_a_new_domain_and_annotator_and_keeps_what_the_document_does_not_hold(catalogue):
    Annotator.objects.filter(number=1).update(request_mode="completion")
    document = json.loads(export_state(actor="test", target="memory"))
    document["catalogue"]["annotators"].append({**document["catalogue"]["annotators"][0], "number": 6,
                                                "name": "sixth"})
    document["catalogue"]["domains"].append({**document["catalogue"]["domains"][0], "slug": "sleep",
                                             "title": "Sleep", "position": 7})
    document["workers"].append({"annotator": 6, "domain": "sleep", "desired_state": "paused"})

    plan = import_state(json.dumps(document), source="state.json", actor="test")

    assert {"annotator 6: new", "domain sleep: new"} <= set(plan.changes)
    assert Annotator.objects.get(number=6).name == "sixth" and Domain.objects.get(slug="sleep").title == "Sleep"
    assert Annotator.objects.get(number=1).request_mode == "completion"
    assert Worker.objects.get(annotator__number=6, domain__slug="sleep").desired_state == "paused"
    assert Worker.objects.count() == 42


def test_the_state_commands_write_and_read_a_file(catalogue, tmp_path):
    path = tmp_path / "state.json"
    call_command("export_state", str(path))
    Annotator.objects.filter(number=2).update(model="changed-model")
    call_command("import_state", str(path))
    assert Annotator.objects.get(number=2).model == "builtin-lexicon-v1"
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_state", str(tmp_path / "missing.json"))


def test_the_reset_command_asks_for_confirmation(annotated, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="not confirmed; nothing was changed"):
        call_command("reset", "--domain", "urgency", "--no-backup")
    assert Outcome.objects.filter(domain__slug="urgency").exists()


def test_the_daily_archive_keeps_only_the_newest_automatic_ones(catalogue):
    from admin_ops.services.archive import scheduled_archive

    manual = create_archive("kept-by-hand", actor="test")
    first = scheduled_archive(keep=1)
    Archive.objects.filter(pk=first.pk).update(created_at=first.created_at.replace(year=2000))
    second = scheduled_archive(keep=1)
    assert set(Archive.objects.values_list("name", flat=True)) == {manual.name, second.name}
    assert not (settings.ARCHIVES_DIR / first.file_name).exists()
