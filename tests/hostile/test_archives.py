"""Hostile archives: each is refused with the member (and line) and the reason, a restore of it changes nothing,
and the attempted restore leaves a failed audit row saying why."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from admin_ops.services.archive import REFERENCE_MEMBERS, ArchiveError, create_archive, verify_archive
from admin_ops.services.restore import RestoreConflict, restore_archive
from audit.actions import Action
from audit.models import AuditLog
from tests.helpers import make_samples
from tests.hostile.conftest import assert_failed_audit
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.flush import flush_workbook
from workers_app.engine.keys import WorkerKey
from workers_app.models import DEFAULT_RUN, Corpus, MalformedAttempt, Outcome, Run, Sample
from workers_app.runs.current import current_run
from workers_app.runs.files import workbook_path
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db

OUTCOMES = "data/outcomes.jsonl"
RUNS = "data/runs.jsonl"
WORKBOOK = "runs/default/annotations/annotator_1_urgency.xlsx"


@pytest.fixture
def base(catalogue) -> dict[str, bytes]:
    """The members of an honest archive (manifest aside) of 8 outcomes of the default run, a named run of 2 samples
    (line 2 of data/runs.jsonl) and a workbook, all of which the store no longer has, so that a restore accepted by
    mistake would change something."""
    for sample in make_samples(4, vary=True):
        for key in (WorkerKey(1, "urgency"), WorkerKey(2, "urgency")):
            annotate_sample(sample, key, worker="w")
    flush_workbook(WorkerKey(1, "urgency"))
    create_run(RunPlan(name="pilot", annotators=[1], domains=["urgency"], limit=2), actor="test")
    archive = create_archive("honest", actor="test")
    with tarfile.open(settings.ARCHIVES_DIR / archive.file_name) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    Run.objects.exclude(name=DEFAULT_RUN).delete()
    for model in (Outcome, MalformedAttempt, Sample, Corpus):
        model.objects.all().delete()
    shutil.rmtree(settings.DATA_DIR / "runs")
    assert members[OUTCOMES].count(b"\n") == 8 and members[RUNS].count(b"\n") == 2
    return {name: data for name, data in members.items() if name != "manifest.json"}


def manifest_of(members: dict[str, bytes], version: int = 3) -> dict:
    return {"format": "annotation-fleet-archive", "version": version, "created_at": "2026-01-01T00:00:00+00:00",
            "created_by": "test", "counts": {"outcomes": 8},
            "members": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                        for name, data in members.items()}}


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def pack(path: Path, members: dict[str, bytes], *, manifest: dict | bytes | None = None,
         extra: tuple[tarfile.TarInfo, ...] = (), mode: str = "w:gz") -> None:
    """An archive of ``members``, its manifest (the correct one unless given) and ``extra`` entries."""
    manifest = manifest_of(members) if manifest is None else manifest
    files = {**members, "manifest.json": manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()}
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)


def with_manifest(change: Callable[[dict], None]):
    def make(path: Path, members: dict[str, bytes]) -> None:
        manifest = manifest_of(members)
        change(manifest)
        pack(path, members, manifest=manifest)
    return make


def with_line(member: str, number: int, change: Callable[[dict], str | None]):
    """The archive with line ``number`` of ``member`` changed (``change`` edits the record or returns the new
    line), its checksums made to match."""
    def make(path: Path, members: dict[str, bytes]) -> None:
        lines = members[member].decode().split("\n")
        record = json.loads(lines[number - 1])
        replaced = change(record)
        lines[number - 1] = replaced if isinstance(replaced, str) else json.dumps(record)
        pack(path, {**members, member: "\n".join(lines).encode()})
    return make


def truncated(path: Path, members: dict[str, bytes]) -> None:
    pack(path, members)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def extra_entry(info: tarfile.TarInfo):
    return lambda path, members: pack(path, members, extra=(info,))


def extra_file(name: str):
    def make(path: Path, members: dict[str, bytes]) -> None:
        pack(path, {**members, name: b"surprise"}, manifest=manifest_of(members))
    return make


def dropped(name: str, *, from_manifest: bool):
    def make(path: Path, members: dict[str, bytes]) -> None:
        kept = {n: d for n, d in members.items() if n != name}
        pack(path, kept, manifest=manifest_of(kept if from_manifest else members))
    return make


def twice(name: str):
    def make(path: Path, members: dict[str, bytes]) -> None:
        pack(path, members)
        with tarfile.open(path) as tar:
            entries = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        with tarfile.open(path, "w:gz") as tar:
            for info, data in [*entries, *[e for e in entries if e[0].name == name]]:
                tar.addfile(info, io.BytesIO(data))
    return make


def added(name: str):
    """The archive with one more member, listed in its manifest."""
    return lambda path, members: pack(path, {**members, name: b"PK not really a workbook"})


def copied_line(member: str, source: int, target: int):
    def make(path: Path, members: dict[str, bytes]) -> None:
        lines = members[member].decode().split("\n")
        lines[target - 1] = lines[source - 1]
        pack(path, {**members, member: "\n".join(lines).encode()})
    return make


REVIEW = "data/review.jsonl"


def with_review(**changes):
    """The archive with one review item of its first sample (changed by ``changes``), listed in its manifest."""
    def make(path: Path, members: dict[str, bytes]) -> None:
        sample = json.loads(members["data/samples.jsonl"].decode().split("\n")[0])["external_id"]
        record = {"sample": sample, "claimed_by": None, "reviewed_by": None, "reasons": ["level_4"], "spread": 0,
                  "risk": 100, "status": "open", "adjudicated": {}, "note": "", "claimed_at": None,
                  "reviewed_at": None, "alerted_at": None, "created_at": "2026-01-01T00:00:00+00:00", **changes}
        pack(path, {**members, REVIEW: json.dumps(record).encode() + b"\n"})
    return make


def set_field(name: str, value: object):
    return lambda record: record.update({name: value})


def without(name: str):
    def change(record: dict) -> None:
        del record[name]
    return change


CASES = {
    "a tar that is not gzip": (lambda path, members: pack(path, members, mode="w"), "not a gzip file"),
    "a truncated gzip": (truncated, "hostile.tar.gz: not a readable tar.gz archive, or a damaged or truncated one"),
    "a manifest whose members is a list": (with_manifest(lambda m: m.update(members=list(m["members"]))),
                                           "manifest.json: members: expected an object of member name"),
    "an empty manifest object": (with_manifest(lambda m: m.clear()),
                                 "manifest.json: not a version 1, 2 or 3 annotation-fleet-archive manifest"),
    "an empty manifest file": (lambda path, members: pack(path, members, manifest=b""), "manifest.json: not JSON"),
    "a manifest without its member list": (with_manifest(lambda m: m.pop("members")),
                                           "manifest.json: members: expected an object"),
    "a checksum that is not 64 hex digits": (
        with_manifest(lambda m: m["members"]["state.json"].update(sha256="../../etc/passwd")),
        "manifest.json: members: 'state.json': expected {sha256: 64 hex digits, size: a whole number}"),
    "a negative size": (with_manifest(lambda m: m["members"]["state.json"].update(size=-1)),
                        "manifest.json: members: 'state.json': expected {sha256"),
    "counts that are not numbers": (with_manifest(lambda m: m.update(counts={"outcomes": "many"})),
                                    "manifest.json: counts: expected an object of whole numbers"),
    "created_at that is not text": (with_manifest(lambda m: m.update(created_at=20260101)),
                                    "manifest.json: created_at: expected text"),
    "a manifest naming a member the archive lacks": (dropped(WORKBOOK, from_manifest=False),
                                                     f"{WORKBOOK}: missing from the archive"),
    "an archive without its outcomes": (dropped(OUTCOMES, from_manifest=True),
                                        "manifest.json: members: data/outcomes.jsonl is not listed"),
    "an extra member": (extra_file("runs/default/annotations/annotator_2_urgency.xlsx"),
                        "runs/default/annotations/annotator_2_urgency.xlsx: not in the manifest"),
    "a member of no archive": (extra_file("run-me.sh"),
                               "run-me.sh: refused (not a member of an archive of this console)"),
    "a member given twice": (twice("state.json"), "state.json: refused (appears twice)"),
    "a hard link": (extra_entry(special("runs/default/annotations/annotator_3_urgency.xlsx", tarfile.LNKTYPE,
                                        "state.json")),
                    "runs/default/annotations/annotator_3_urgency.xlsx: refused (link)"),
    "a symbolic link": (extra_entry(special("data/passwd", tarfile.SYMTYPE, "/etc/passwd")),
                        "data/passwd: refused (link)"),
    "a device": (extra_entry(special("data/zero", tarfile.CHRTYPE)), "data/zero: refused (device or special file)"),
    "an absolute path": (extra_file("/etc/cron.d/evil"), "/etc/cron.d/evil: refused (absolute path)"),
    "a path with ..": (extra_file("workbooks/../../evil.xlsx"), "workbooks/../../evil.xlsx: refused (path with '..')"),
    "a line without a field": (with_line(OUTCOMES, 7, without("status")),
                               "data/outcomes.jsonl line 7: missing field 'status'"),
    "a line that is not JSON": (with_line(OUTCOMES, 2, lambda record: "{not json"),
                                "data/outcomes.jsonl line 2: not JSON"),
    "a line that is a list": (with_line(OUTCOMES, 3, lambda record: "[1, 2]"),
                              "data/outcomes.jsonl line 3: expected a JSON object"),
    "a line with NaN": (with_line(OUTCOMES, 1, lambda record: json.dumps({**record, "latency_ms": float("nan")})),
                        "data/outcomes.jsonl line 1: not JSON (NaN is not a number JSON allows)"),
    "a status the store does not know": (with_line(OUTCOMES, 4, set_field("status", "hacked")),
                                         "data/outcomes.jsonl line 4: status: Value 'hacked' is not a valid choice."),
    "a time that is not a time": (with_line(OUTCOMES, 5, set_field("created_at", "yesterday")),
                                  "data/outcomes.jsonl line 5: created_at:"),
    "a negative latency": (with_line(OUTCOMES, 6, set_field("latency_ms", -5)),
                           "data/outcomes.jsonl line 6: latency_ms: Ensure this value is greater than or equal to 0."),
    "an annotator number given as text": (with_line(OUTCOMES, 8, set_field("annotator", "1")),
                                          "data/outcomes.jsonl line 8: annotator: expected a whole number"),
    "a sample of a corpus nobody has": (with_line("data/samples.jsonl", 2, set_field("corpus", ["f" * 64, "x"])),
                                        "data/samples.jsonl line 2: corpus ['" + "f" * 64 + "', 'x'] is neither in "
                                        "data/corpora.jsonl nor in the store"),
    "an outcome of an unknown annotator": (with_line(OUTCOMES, 1, set_field("annotator", 9)),
                                           ("data/outcomes.jsonl line 1: annotator 9 or domain 'urgency' is not in "
                                            "the catalogue")),
    "an outcome given twice": (copied_line(OUTCOMES, 1, 2), "data/outcomes.jsonl line 2: repeats line 1"),
    "a cost that is not a number": (with_line(OUTCOMES, 3, set_field("cost", "free")),
                                    "data/outcomes.jsonl line 3: cost: "),
    "a confidence above one": (with_line(OUTCOMES, 3, set_field("confidence", 1.5)),
                               "data/outcomes.jsonl line 3: confidence: "),
    "a confidence that is not a number": (with_line(OUTCOMES, 3, set_field("confidence", "NaN")),
                                          "data/outcomes.jsonl line 3: confidence: "),
    "a review item of a sample nobody has": (with_review(sample="nobody"),
                                             "data/review.jsonl line 1: sample 'nobody' is neither in"),
    "a review status the store does not know": (with_review(status="done-ish"),
                                                 "data/review.jsonl line 1: status: Value 'done-ish' is not a valid"),
    "a reviewer named by a number": (with_review(reviewed_by=7),
                                     "data/review.jsonl line 1: reviewed_by: expected a user name or null"),
    "a review item without its reasons": (with_review(reasons=None),
                                          "data/review.jsonl line 1: reasons: "),
    "a workbook of a worker the catalogue lacks": (added("runs/default/annotations/annotator_9_urgency.xlsx"),
                                                   ("runs/default/annotations/annotator_9_urgency.xlsx: a workbook "
                                                    "of a worker the catalogue does not have")),
    "a run with a bad name": (with_line(RUNS, 2, set_field("name", "../Pilot")),
                              "data/runs.jsonl line 2: name: 1-40 lower-case letters"),
    "a run name ending in a newline": (with_line(RUNS, 2, set_field("name", "pilot\n")),
                                       "data/runs.jsonl line 2: name: 1-40 lower-case letters"),
    "two current runs": (with_line(RUNS, 2, set_field("is_current", True)),
                         "data/runs.jsonl line 2: is_current: data/runs.jsonl line 1 is current too"),
    "a run given twice": (with_line(RUNS, 2, set_field("name", "default")),
                          "data/runs.jsonl line 2: name: run 'default' is given twice (also data/runs.jsonl line 1)"),
    "a pinned that is not an object": (with_line(RUNS, 2, set_field("pinned", ["model"])),
                                       "data/runs.jsonl line 2: pinned: expected an object"),
    "a pinned temperature that is text": (
        with_line(RUNS, 2, lambda run: run["pinned"]["annotators"]["1"].update(temperature="hot")),
        "data/runs.jsonl line 2: pinned.annotators.1.temperature: "),
    "a pinned setting no run pins": (
        with_line(RUNS, 2, lambda run: run["pinned"]["annotators"]["1"].update(api_key_encrypted="x")),
        "data/runs.jsonl line 2: pinned.annotators.1.api_key_encrypted: not a setting a run pins"),
    "a run member the archive lacks": (with_line(RUNS, 2, set_field("samples", ["nobody"])),
                                       "data/runs.jsonl line 2: samples: sample 'nobody' is not in data/samples.jsonl"),
    "a run member given twice": (with_line(RUNS, 2, lambda run: run.update(samples=run["samples"][:1] * 2)),
                                 "data/runs.jsonl line 2: samples: listed twice: 'S-"),
    "a run of an unknown annotator": (with_line(RUNS, 2, set_field("annotators", [1, 9])),
                                      "data/runs.jsonl line 2: annotators: annotator 9 is not in the catalogue"),
    "a negative run budget": (with_line(RUNS, 2, set_field("budget", "-1")),
                              "data/runs.jsonl line 2: budget: The budget cannot be negative."),
    "a run line without its members": (with_line(RUNS, 2, without("samples")),
                                       "data/runs.jsonl line 2: missing field 'samples'"),
    "a run the store has with other settings": (with_line(RUNS, 1, set_field("all_samples", False)),
                                                ("data/runs.jsonl line 1: the store has a run 'default' with other "
                                                 "all_samples")),
    "an outcome of a run nobody has": (with_line(OUTCOMES, 1, set_field("run", "ghost")),
                                       "data/outcomes.jsonl line 1: run 'ghost' is neither in data/runs.jsonl nor"),
    "an outcome without its run": (with_line(OUTCOMES, 2, without("run")),
                                   "data/outcomes.jsonl line 2: missing field 'run'"),
    "a workbook of a run nobody has": (added("runs/ghost/annotations/annotator_1_urgency.xlsx"),
                                       ("runs/ghost/annotations/annotator_1_urgency.xlsx: run 'ghost' is neither in "
                                        "data/runs.jsonl nor in the store")),
    "a workbook under a name no run may have": (extra_file("runs/Ghost/annotations/annotator_1_urgency.xlsx"),
                                                ("runs/Ghost/annotations/annotator_1_urgency.xlsx: refused (not a "
                                                 "member of an archive of this console)")),
    "a workbook outside a run's annotations": (extra_file("runs/default/annotator_1_urgency.xlsx"),
                                               ("runs/default/annotator_1_urgency.xlsx: refused (not a member of an "
                                                "archive of this console)")),
    "a version 1 workbook in a version 3 archive": (added("workbooks/annotator_1_urgency.xlsx"),
                                                    ("manifest.json: members: 'workbooks/annotator_1_urgency.xlsx' is "
                                                     "not a member of a version 3 archive")),
    "a manifest whose run is not a run name": (with_manifest(lambda m: m.update(run="../x")),
                                               "manifest.json: run: expected the name of a run, or null"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_a_hostile_archive(base, unchanged, tmp_path, case):
    make, message = CASES[case]
    path = tmp_path / "hostile.tar.gz"
    make(path, base)

    with pytest.raises((ArchiveError, RestoreConflict)) as refused:
        restore_archive(path, actor="test")

    assert message in str(refused.value) and "nothing was restored" in str(refused.value)
    unchanged()
    assert_failed_audit(Action.RESTORE_ARCHIVE, mentioning=message)


def test_it_refuses_a_member_over_the_size_limit_before_reading_it(base, settings, unchanged, tmp_path):
    path = tmp_path / "big.tar.gz"
    pack(path, base)
    settings.ARCHIVE_MAX_MEMBER_BYTES = 1000
    size = len(base[OUTCOMES])

    assert f"{OUTCOMES}: refused ({size:,} bytes, more than the limit of 1,000 (ARCHIVE_MAX_MEMBER_MB))" \
        in verify_archive(path).problems
    with pytest.raises(ArchiveError, match="more than the limit of 1,000"):
        restore_archive(path, actor="test")
    unchanged()
    assert_failed_audit(Action.RESTORE_ARCHIVE, mentioning="more than the limit of 1,000")


def test_it_refuses_to_restore_a_folder(base, unchanged, tmp_path):
    with pytest.raises(ArchiveError, match=f"{tmp_path}: not a file"):
        restore_archive(tmp_path, actor="test")

    unchanged()
    assert_failed_audit(Action.RESTORE_ARCHIVE, mentioning="not a file")


def test_verification_names_the_problem_without_restoring(base, unchanged, tmp_path):
    path = tmp_path / "hostile.tar.gz"
    with_manifest(lambda m: m.update(members=list(m["members"])))(path, base)

    assert verify_archive(path).problems == [
        "manifest.json: members: expected an object of member name -> {sha256, size}"]
    assert verify_archive(path).manifest == {}
    unchanged()


def test_a_refused_dry_run_writes_no_audit_row(base, unchanged, tmp_path):
    path = tmp_path / "hostile.tar.gz"
    with_line(OUTCOMES, 7, without("status"))(path, base)

    with pytest.raises(ArchiveError, match="data/outcomes.jsonl line 7: missing field 'status'"):
        restore_archive(path, actor="test", dry_run=True)

    unchanged()
    assert not AuditLog.objects.filter(action=Action.RESTORE_ARCHIVE).exists()


def test_the_honest_archive_of_these_tests_restores(base, tmp_path):
    """The hostile cases above differ from this one archive only in what they name."""
    path = tmp_path / "honest.tar.gz"
    pack(path, base)

    plan = restore_archive(path, actor="test")

    assert (plan.runs, plan.outcomes, plan.workbooks, plan.current) == (["pilot"], 8, [WORKBOOK], None)
    assert Outcome.objects.filter(run__name=DEFAULT_RUN).count() == 8 and workbook_path(WorkerKey(1, "urgency")).exists()
    pilot = Run.objects.get(name="pilot")
    assert (pilot.annotators, pilot.domains, pilot.is_current, pilot.samples.count()) == ([1], ["urgency"], False, 2)
    assert pilot.pinned["annotators"]["1"]["model"] == "builtin-lexicon-v1"


def lines_without(data: bytes, *names: str) -> bytes:
    """JSON lines with the fields ``names`` taken out of every line."""
    records = [json.loads(line) for line in data.decode().rstrip("\n").split("\n") if line]
    return "".join(json.dumps({k: v for k, v in r.items() if k not in names}) + "\n" for r in records).encode()


def before_runs(members: dict[str, bytes]) -> dict[str, bytes]:
    """The members as an archive made before named runs had them (version 1): no data/runs.jsonl, no run in the
    outcome and malformed lines, the workbooks under workbooks/."""
    old = {}
    for name, data in members.items():
        if name in (OUTCOMES, "data/malformed.jsonl"):
            data = lines_without(data, "run")
        if name != RUNS and name not in REFERENCE_MEMBERS:
            old[f"workbooks/{name.rsplit('/', 1)[1]}" if name.startswith("runs/") else name] = data
    return old


def pack_version_1(path: Path, members: dict[str, bytes]) -> None:
    pack(path, members, manifest=manifest_of(members, version=1))


def test_an_archive_made_before_runs_costs_and_the_review_queue_still_restores(base, tmp_path):
    """Its outcome lines lack the run, cost, cached and cached_latency_ms, and it has no review member at all."""
    members = {name: data for name, data in before_runs(base).items() if name != REVIEW}
    members[OUTCOMES] = lines_without(members[OUTCOMES], "cost", "cached", "cached_latency_ms")
    path = tmp_path / "older.tar.gz"
    pack_version_1(path, members)

    plan = restore_archive(path, actor="test")

    assert (plan.runs, plan.outcomes, plan.review, plan.workbooks) == ([], 8, 0, [WORKBOOK])
    assert Outcome.objects.filter(run__name=DEFAULT_RUN, cost__isnull=True, cached=False).count() == 8
    assert (settings.DATA_DIR / WORKBOOK).read_bytes() == base[WORKBOOK]


def test_an_archive_made_before_runs_restores_into_a_default_run_it_makes_current(base, tmp_path):
    Run.objects.all().delete()
    path = tmp_path / "older.tar.gz"
    pack_version_1(path, before_runs(base))

    plan = restore_archive(path, actor="test")

    assert (plan.runs, plan.current, plan.outcomes) == ([DEFAULT_RUN], DEFAULT_RUN, 8)
    default = Run.objects.get()
    assert (default.name, default.is_current, default.all_samples, default.outcomes.count()) == (
        DEFAULT_RUN, True, True, 8)
    assert current_run() == default and workbook_path(WorkerKey(1, "urgency")).read_bytes() == base[WORKBOOK]


def test_an_archive_made_before_runs_leaves_a_named_current_run_current(base, tmp_path):
    from workers_app.runs.services import switch_run

    make_samples(2, text="for the trial", vary=True)
    trial = create_run(RunPlan(name="trial", limit=2), actor="test")
    switch_run(trial, actor="test")
    path = tmp_path / "older.tar.gz"
    pack_version_1(path, before_runs(base))

    plan = restore_archive(path, actor="test")

    assert (plan.runs, plan.current) == ([], None)
    assert Run.objects.get(is_current=True) == trial and not trial.outcomes.exists()
    assert Outcome.objects.filter(run__name=DEFAULT_RUN).count() == 8


@pytest.mark.parametrize(("name", "data"), [("data/runs.jsonl", b""), (WORKBOOK, b"PK")])
def test_a_version_1_archive_with_a_member_of_version_2_is_refused(base, unchanged, tmp_path, name, data):
    path = tmp_path / "mixed.tar.gz"
    pack_version_1(path, {**before_runs(base), name: data})

    with pytest.raises(ArchiveError, match=f"manifest.json: members: '{name}' is not a member of a version 1 archive"):
        restore_archive(path, actor="test")

    unchanged()


def test_a_review_item_in_an_archive_comes_back_with_its_adjudication(base, tmp_path, django_user_model):
    from workers_app.models import ReviewItem

    reviewer = django_user_model.objects.create_user("rita", is_staff=True)
    path = tmp_path / "reviewed.tar.gz"
    with_review(status="reviewed", reviewed_by="rita", claimed_by="left-the-team", adjudicated={"urgency": ["LEVEL_2"]},
                reviewed_at="2026-01-02T00:00:00+00:00", note="=cmd|' /C calc'!A0")(path, base)

    assert restore_archive(path, actor="test").review == 1

    item = ReviewItem.objects.get()
    assert (item.status, item.reviewed_by, item.claimed_by, item.adjudicated) == (
        "reviewed", reviewer, None, {"urgency": ["LEVEL_2"]})  # a user name this database lacks: left empty
    assert item.note == "=cmd|' /C calc'!A0"  # text stays text
