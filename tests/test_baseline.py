"""The trained baseline annotator: learned from a reference set (TF-IDF + logistic regression), cross-validated on
it, stored as a checked file under DATA_DIR, and answering through the normal worker path with its probability."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditLog
from tests.helpers import make_samples
from workers_app.baselines import files
from workers_app.baselines.files import model_bytes, write_model
from workers_app.baselines.loaded import forget_loaded, loaded_baseline
from workers_app.baselines.services import train_baseline
from workers_app.engine.annotate import Result, annotate_sample, annotate_samples
from workers_app.engine.backends import PermanentBackendError, backend_for
from workers_app.engine.catalogue_cache import forget_cached_rows
from workers_app.engine.keys import WorkerKey
from workers_app.importing.service import import_corpus
from workers_app.models import Annotator, Outcome, ReferenceSet, Sample, TrainedBaseline
from workers_app.references.importer import import_reference
from workers_app.references.options import Layout
from workers_app.runs.services import RunPlan, create_run

pytestmark = pytest.mark.django_db

# Each level has words of its own, with filler shared by all, so that a text model can learn it.
LEVELS = {
    "LEVEL_0": "garden walk sunny hobby",
    "LEVEL_1": "tired stress exams deadline",
    "LEVEL_2": "hopeless empty crying alone",
    "LEVEL_3": "cutting hurt bleeding scars",
    "LEVEL_4": "pills tonight goodbye rope",
}
ADJUNCT = {"LEVEL_0": "NONE", "LEVEL_1": "ADJ-3", "LEVEL_2": "ADJ-4", "LEVEL_3": "ADJ-1, ADJ-4", "LEVEL_4": "ADJ-5"}
PER_LEVEL = 6


@pytest.fixture(autouse=True)
def fresh_models():
    forget_loaded()
    yield
    forget_loaded()
    shutil.rmtree(settings.DATA_DIR / files.FOLDER, ignore_errors=True)


def post(level: str, i: int) -> str:
    words = LEVELS[level].split()
    return f"post {i}: today I felt {words[i % 4]} and {words[(i + 1) % 4]} as usual this week"


@pytest.fixture
def experts(catalogue, tmp_path) -> ReferenceSet:
    corpus, labels = tmp_path / "posts.csv", tmp_path / "labels.csv"
    rows = [(f"P-{level[-1]}-{i}", post(level, i), level, ADJUNCT[level]) for level in LEVELS for i in range(PER_LEVEL)]
    corpus.write_text("ID,Text\n" + "".join(f"{pid},{text}\n" for pid, text, _, _ in rows))
    labels.write_text("ID,Risk,Services\n" + "".join(f'{pid},{level},"{adj}"\n' for pid, _, level, adj in rows))
    import_corpus(corpus, actor="test")
    return import_reference(labels, name="experts", actor="test",
                            layout=Layout(labels={"urgency": "Risk", "adjunct": "Services"})).reference_set


def annotator(number: int = 1) -> Annotator:
    return Annotator.objects.get(number=number)


def model_files() -> list[Path]:
    return sorted((settings.DATA_DIR / files.FOLDER).rglob("*"))


def test_it_learns_a_reference_set_answers_its_labels_and_stores_its_cross_validated_quality(experts):
    row = train_baseline(annotator(), experts, actor="test", folds=5, bootstrap=200)

    assert (row.version, annotator().baseline_version, row.reference_name, row.folds) == (1, 1, "experts", 5)
    baseline = loaded_baseline(annotator())
    right = sum(baseline.answer("urgency", text)[0] == level
                for text, level in zip(Sample.objects.order_by("pk").values_list("text", flat=True),
                                       [level for level in LEVELS for _ in range(PER_LEVEL)], strict=True))
    assert right >= 0.9 * len(LEVELS) * PER_LEVEL
    label, probability = baseline.answer("adjunct", post("LEVEL_3", 2))
    assert label == "ADJ-1, ADJ-4" and 0 < probability <= 1
    urgency = row.domains["urgency"]
    assert (urgency["items"], urgency["n"], urgency["kappa_weights"], urgency["classes"]) == (
        30, 30, "quadratic", sorted(LEVELS))
    for name in ("accuracy", "macro_f1", "kappa"):
        low, high = urgency[name]["ci95"]
        assert 0 <= low <= urgency[name]["value"] <= high <= 1
    assert row.domains["adjunct"]["kappa_weights"] == "masi"
    assert TrainedBaseline.objects.get(pk=row.pk).domains == row.domains
    assert AuditLog.objects.get(action="train_baseline", result="ok").detail["version"] == 1


def test_a_second_training_is_the_next_version_and_keeps_the_first_file(experts):
    first = train_baseline(annotator(), experts, actor="test", bootstrap=0)
    second = train_baseline(annotator(), experts, actor="test", bootstrap=0)

    assert (first.version, second.version, annotator().baseline_version) == (1, 2, 2)
    assert (settings.DATA_DIR / first.file_name).exists() and (settings.DATA_DIR / second.file_name).exists()
    assert oct((settings.DATA_DIR / second.file_name).stat().st_mode & 0o777) == "0o600"


def test_a_model_file_is_replaced_atomically_and_a_failed_write_leaves_the_old_one(monkeypatch):
    relative = f"{files.FOLDER}/annotator-1/v1-test.pkl"
    target = write_model(relative, b"old model")
    real_write = os.write

    def write_half_then_fail(fd, data):
        real_write(fd, bytes(data[:3]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "write", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_model(relative, b"new model")
    monkeypatch.undo()

    assert target.read_bytes() == b"old model" and model_files() == [target.parent, target]
    write_model(relative, b"new model")
    assert target.read_bytes() == b"new model" and model_files() == [target.parent, target]


def test_a_stale_model_file_is_refused_with_the_version_it_holds(experts):
    first = train_baseline(annotator(), experts, actor="test", bootstrap=0)
    second = train_baseline(annotator(), experts, actor="test", bootstrap=0)
    shutil.copyfile(settings.DATA_DIR / first.file_name, settings.DATA_DIR / second.file_name)  # an old backup
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)

    with pytest.raises(PermanentBackendError, match="is stale: it holds annotator 1's version 1, but annotator 1 "
                                                    "answers with version 2"):
        backend_for(annotator())


SPRUNG: list[str] = []


def spring(what: str) -> None:
    SPRUNG.append(what)


class _Trap:
    """Unpickling this calls a function: a foreign file must never get that far."""

    def __reduce__(self):
        return (spring, ("unpickled",))


@pytest.mark.parametrize("content, reason", [
    (b"\x80\x04K\x01.", "is not a trained-baseline file written by this console"),
    (model_bytes(1, 1, {"domains": _Trap()}), "its SHA-256 differs from the one recorded then"),
])
def test_a_foreign_model_file_is_refused_before_anything_is_unpickled(experts, content, reason):
    row = train_baseline(annotator(), experts, actor="test", bootstrap=0)
    (settings.DATA_DIR / row.file_name).write_bytes(content)
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)

    with pytest.raises(PermanentBackendError, match=reason):
        backend_for(annotator())
    assert SPRUNG == []


def test_the_command_trains_and_shows_the_cross_validated_figures(experts, capsys):
    call_command("baseline", "train", "--annotator", "2", "--reference", "experts", "--folds", "3")
    out = capsys.readouterr().out
    assert "annotator 2: trained baseline version 1 from reference set experts" in out
    assert "3-fold cross-validated on it:" in out and "urgency: 30 items, 5 classes; accuracy " in out
    assert "set its backend to 'trained' for this model to answer" in out

    call_command("baseline", "show", "--annotator", "2")
    shown = capsys.readouterr().out
    assert "current version 1" in shown and "version 1: reference set experts, 3 folds" in shown
    assert "(kappa quadratic; 95 % bootstrap intervals)" in shown
    call_command("baseline", "show", "--annotator", "2", "--json")
    document = json.loads(capsys.readouterr().out)
    assert (document["current_version"], document["backend"], len(document["versions"])) == (1, "builtin", 1)
    assert document["versions"][0]["domains"]["urgency"] == TrainedBaseline.objects.get().domains["urgency"]


def test_a_domain_with_too_few_labels_is_left_out_by_name_and_the_others_are_learned(experts, tmp_path):
    path = tmp_path / "partial.csv"
    path.write_text("ID,Risk,Approach\n" + "".join(
        f"P-{level[-1]}-{i},{level},{'TA-1' if i < 1 else ''}\n" for level in LEVELS for i in range(PER_LEVEL)))
    partial = import_reference(path, name="partial", actor="test",
                               layout=Layout(labels={"urgency": "Risk", "therapeutic": "Approach"})).reference_set

    row = train_baseline(annotator(), partial, actor="test", bootstrap=0)

    assert list(row.domains) == ["urgency"]
    assert row.skipped == {"therapeutic": "5 labelled item(s), fewer than 10"}
    # Its other domains' workers store a labelless answer once, without stopping the annotator's urgency worker.
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)
    first, second = Sample.objects.order_by("pk").values_list("pk", flat=True)[:2]
    assert annotate_sample(first, WorkerKey(1, "therapeutic"), worker="w") is Result.MALFORMED
    assert annotate_sample(second, WorkerKey(1, "urgency"), worker="w") is Result.STORED
    malformed = Outcome.objects.get(domain__slug="therapeutic")
    assert (malformed.reason, malformed.attempts, annotator().backend_error) == ("no_marker", 1, "")
    assert "has learned urgency, not therapeutic: no label" in malformed.raw_answer


def too_small(tmp_path) -> list[str]:
    path = tmp_path / "small.csv"
    path.write_text("ID,Risk\nP-0-0,LEVEL_0\nP-4-0,LEVEL_4\nP-2-0,LEVEL_2\n")
    import_reference(path, name="small", layout=Layout(labels={"urgency": "Risk"}), actor="test")
    return ["--annotator", "1", "--reference", "small"]


@pytest.mark.parametrize("arguments, error", [
    (lambda tmp: ["--annotator", "9", "--reference", "experts"], "no annotator 9; the annotators are 1, 2, 3, 4, 5"),
    (lambda tmp: ["--annotator", "1", "--reference", "nope"], "no reference set named 'nope'; the sets are experts"),
    (lambda tmp: ["--annotator", "1", "--reference", "experts", "--folds", "1"], "give a whole number from 2 to 20"),
    (lambda tmp: ["--annotator", "1", "--reference", "experts", "--folds", "40"], "give a whole number from 2 to 20"),
    (too_small, "reference set small has nothing to learn from (urgency: 3 labelled item(s), fewer than 10)"),
    (lambda tmp: ["--annotator", "1", "--reference", "experts", "--folds", "7"],
     ("7 folds need a label given to at least 7 items in each domain: urgency's most common label is given to 6 "
     "item(s); adjunct's most common label is given to 6 item(s)")),
])
def test_the_commands_failure_paths_name_the_reason_and_change_nothing(experts, tmp_path, arguments, error):
    given = arguments(tmp_path)
    with pytest.raises(CommandError) as raised:
        call_command("baseline", "train", *given)

    assert error in str(raised.value)
    assert not TrainedBaseline.objects.exists() and set(Annotator.objects.values_list("baseline_version",
                                                                                      flat=True)) == {0}
    assert not AuditLog.objects.filter(action="train_baseline").exists() and model_files() == []


def test_a_worker_on_the_trained_backend_stores_outcomes_with_their_probability(experts):
    train_baseline(annotator(), experts, actor="test", bootstrap=0)
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)
    samples = list(Sample.objects.order_by("pk").values_list("pk", flat=True))

    assert annotate_samples(samples[:10], WorkerKey(1, "urgency"), worker="w@test") == ([], 0.0)
    assert annotate_sample(samples[0], WorkerKey(1, "adjunct"), worker="w@test") is Result.STORED

    outcomes = list(Outcome.objects.filter(domain__slug="urgency").order_by("sample_id"))
    assert len(outcomes) == 10 and {o.status for o in outcomes} == {"ok"}
    assert [o.labels for o in outcomes[:PER_LEVEL]].count(["LEVEL_0"]) >= PER_LEVEL - 1
    first = outcomes[0]
    assert (first.model, first.parameters["backend"]) == ("trained-baseline-v1", "trained")
    assert 0 < first.confidence <= 1 and f"probability {first.confidence:.3f}" in \
        first.raw_answer
    assert Outcome.objects.get(domain__slug="adjunct").labels == ["NONE"]


def test_an_annotator_on_the_trained_backend_with_no_model_stops_with_the_reason(catalogue):
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)
    [sample] = make_samples(1)

    assert annotate_sample(sample, WorkerKey(1, "urgency"), worker="w") is Result.BLOCKED
    assert "annotator 1 has no trained model yet" in annotator().backend_error
    assert not Outcome.objects.exists()



def test_a_run_keeps_answering_with_the_version_it_pinned(experts):
    train_baseline(annotator(), experts, actor="test", bootstrap=0)
    Annotator.objects.filter(number=1).update(backend=Annotator.Backend.TRAINED)
    corpora = list(Sample.objects.values_list("corpus_id", flat=True).distinct())
    pinned = create_run(RunPlan(name="pinned", annotators=[1], domains=["urgency"], corpora=corpora), actor="test")
    train_baseline(annotator(), experts, actor="test", bootstrap=0)
    forget_cached_rows()
    first, second = Sample.objects.order_by("pk").values_list("pk", flat=True)[:2]

    assert annotate_sample(first, WorkerKey(1, "urgency"), worker="w", run_id=pinned.pk) is Result.STORED
    assert annotate_sample(second, WorkerKey(1, "urgency"), worker="w") is Result.STORED
    assert dict(Outcome.objects.values_list("run__name", "model")) == {"pinned": "trained-baseline-v1",
                                                                       "default": "trained-baseline-v2"}
