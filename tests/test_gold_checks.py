"""Gold checks inside a run, in one process (the LLM a fake on loopback, Redis real): which reference items a run
mixes in (seeded, its share), each annotator's rolling accuracy on them as outcomes are stored, the pause once it
falls below the run's threshold (once, audited, one alert from the sweep), what survives Redis losing it, and where
gold items show: quality, the consolidated workbook, the dashboard cell, /metrics."""

from __future__ import annotations

import csv
import json

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from admin_ops.services.consolidate import consolidate
from audit.models import AuditLog
from tests.fake_llm import Reply
from tests.helpers import make_reference, make_samples
from workers_app.engine.annotate import annotate_sample
from workers_app.engine.gold import GoldScore, gold_key, gold_scores
from workers_app.engine.keys import WorkerKey
from workers_app.fleet.rows import ensure_worker_rows
from workers_app.models import Alert, Outcome, Run, RunSample, Sample, Worker, WorkerEvent
from workers_app.monitoring.gold import gold_sweep
from workers_app.monitoring.sweep import health_sweep
from workers_app.redis_client import get_redis
from workers_app.references.importer import delete_reference
from workers_app.references.options import ReferenceRefused
from workers_app.references.quality import run_quality
from workers_app.runs.gold import GoldPlan
from workers_app.runs.services import RunPlan, RunRefused, create_run, switch_run

pytestmark = pytest.mark.django_db

URGENCY = WorkerKey(1, "urgency")
RIGHT, WRONG = "<<LEVEL_1>>", "<<LEVEL_3>>"
GOLD_TEXT = "A gold post"


@pytest.fixture
def pools(catalogue):
    """40 posts to annotate and 20 gold posts in a corpus of their own, each labelled LEVEL_1 on urgency."""
    work = make_samples(40, vary=True)
    gold = make_samples(20, GOLD_TEXT, vary=True)
    reference = make_reference("experts", {(s, "urgency", ""): ["LEVEL_1"] for s in gold})
    return work, gold, reference


def corpus_of(samples: list[int]) -> int:
    return Sample.objects.get(pk=samples[0]).corpus_id


def gold_run(pools, name: str = "checked", *, share: float = 0.25, threshold: float = 0.7, min_items: int = 4,
             window: int | None = None, seed: int = 0, annotators: tuple[int, ...] = (1,)) -> Run:
    work, _, reference = pools
    return create_run(RunPlan(name=name, annotators=list(annotators), domains=["urgency"], corpora=[corpus_of(work)],
                              seed=seed, gold=GoldPlan(reference, share=share, threshold=threshold,
                                                       min_items=min_items, window=window)), actor="test")


def gold_ids(run: Run) -> list[int]:
    return sorted(RunSample.objects.filter(run=run, gold=True).values_list("sample_id", flat=True))


def annotate(run: Run, samples: list[int], key: WorkerKey = URGENCY) -> None:
    for sample in samples:
        annotate_sample(sample, key, worker="w", run_id=run.pk)


def launched(number: int) -> list[Worker]:
    """The annotator's worker rows as staff launched them (no processes here)."""
    ensure_worker_rows()
    Worker.objects.filter(annotator__number=number).update(desired_state=Worker.Desired.RUNNING)
    return list(Worker.objects.filter(annotator__number=number))


# -- which items are gold


def test_a_run_mixes_in_its_share_of_reference_items_and_a_rerun_picks_the_same(pools):
    work, gold, _ = pools
    first = gold_run(pools, "first", share=0.25, seed=7)
    assert len(gold_ids(first)) == 10  # a quarter of the 40 chosen
    assert set(gold_ids(first)) <= set(gold)
    members = set(RunSample.objects.filter(run=first).values_list("sample_id", flat=True))
    assert members == set(work) | set(gold_ids(first))
    assert first.selection["samples"] == 50 and first.selection["gold_items"] == 10
    assert gold_ids(gold_run(pools, "again", share=0.25, seed=7)) == gold_ids(first)
    assert gold_ids(gold_run(pools, "other-seed", share=0.25, seed=8)) != gold_ids(first)
    audit = AuditLog.objects.get(action="create_run", target="first")
    assert audit.parameters["gold"] == {"reference": "experts", "share": 0.25, "threshold": 0.7, "min_items": 4,
                                        "window": None}


def test_reference_items_the_selection_chose_already_become_gold_where_they_are(pools):
    work, _, _ = pools
    inside = make_reference("inside", {(s, "urgency", ""): ["LEVEL_2"] for s in work[:10]})
    run = create_run(RunPlan(name="inside", domains=["urgency"], corpora=[corpus_of(work)],
                             gold=GoldPlan(inside, share=0.25, threshold=0.5)), actor="test")
    assert RunSample.objects.filter(run=run).count() == 40 and gold_ids(run) == sorted(work[:10])


@pytest.mark.parametrize(("share", "wanted"), [(0.01, 1), (0.05, 2), (0.1, 4), (0.5, 20)])
def test_the_share_is_rounded_takes_at_least_one_and_at_most_what_the_set_holds(pools, share, wanted):
    assert len(gold_ids(gold_run(pools, share=share))) == wanted


def test_gold_items_are_queued_like_any_sample(pools, http_annotator, fake_llm):
    run = gold_run(pools)
    annotate(run, gold_ids(run)[:1])
    [request] = fake_llm.requests
    assert "gold" not in str(request["body"]).replace(GOLD_TEXT, "")  # the prompt says nothing of gold


@pytest.mark.parametrize(("changes", "message"), [
    ({"share": 0}, "gold share 0"), ({"share": 0.9}, "at most 0.5"), ({"threshold": 1.5}, "gold threshold 1.5"),
    ({"min_items": 0}, "gold minimum 0"), ({"window": 2, "min_items": 4}, "gold window 2"),
])
def test_bad_gold_settings_are_refused_by_name_and_make_no_run(pools, changes, message):
    with pytest.raises(RunRefused, match=message):
        gold_run(pools, **changes)
    assert not Run.objects.filter(name="checked").exists()


def test_a_reference_that_labels_nothing_the_run_takes_is_refused(pools):
    work, _, _ = pools
    elsewhere = make_reference("therapy-only", {(work[0], "therapeutic", ""): ["TA-1"]})
    with pytest.raises(RunRefused, match="labels no sample in a domain this run takes"):
        create_run(RunPlan(name="checked", domains=["urgency"], gold=GoldPlan(elsewhere, share=0.1, threshold=0.5)),
                   actor="test")


def test_a_reference_set_in_use_for_gold_cannot_be_deleted(pools):
    gold_run(pools)
    with pytest.raises(ReferenceRefused, match="gold set of run"):
        delete_reference(pools[2], actor="test")


def test_the_command_makes_a_run_with_gold_checks(pools, capsys):
    work, _, _ = pools
    call_command("runs", "create", "cli", "--domain", "urgency", "--corpus", str(corpus_of(work)),
                 "--gold-reference", "experts", "--gold-share", "0.1", "--gold-threshold", "0.8",
                 "--gold-min-items", "3", "--gold-window", "5")
    assert "(of them 4 gold items of experts)" in capsys.readouterr().out
    run = Run.objects.get(name="cli")
    assert (run.gold_share, run.gold_threshold, run.gold_min_items, run.gold_window) == (0.1, 0.8, 3, 5)
    with pytest.raises(CommandError, match="no reference set named 'nope'"):
        call_command("runs", "create", "cli2", "--gold-reference", "nope")
    with pytest.raises(CommandError, match="--gold-min-items without --gold-reference"):
        call_command("runs", "create", "cli2", "--gold-min-items", "3")
    call_command("runs", "create", "defaults", "--corpus", str(corpus_of(work)), "--gold-reference", "experts")
    run = Run.objects.get(name="defaults")
    assert (run.gold_share, run.gold_threshold, run.gold_min_items, run.gold_window) == (0.05, 0.7, 10, None)
    assert not Run.objects.filter(name="cli2").exists()


# -- the rolling accuracy


def test_gold_score_counts_right_answers_and_judges_after_the_minimum(pools):
    run = gold_run(pools, threshold=0.7, min_items=4)
    assert GoldScore.of("101").accuracy == pytest.approx(2 / 3) and not GoldScore.of("101").failing(run)
    assert GoldScore.of("1010").failing(run) and not GoldScore.of("1110").failing(run)
    assert GoldScore.of("").accuracy is None and GoldScore.of("").text() == "—"
    assert GoldScore.of("1010").reason(run) == "gold accuracy 0.50 < 0.70 over 4 items"


def test_each_stored_gold_answer_moves_the_accuracy_and_other_samples_do_not(pools, http_annotator, fake_llm):
    work, _, _ = pools
    run = gold_run(pools, min_items=100)
    gold = gold_ids(run)
    annotate(run, work[:5])
    assert gold_scores(run) == {}  # stored, not gold: nothing to score (and the hash was built from the store)
    annotate(run, gold[:3])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[3:4])
    assert gold_scores(run) == {1: GoldScore(3, 4)}
    annotate(run, gold[:1])  # already stored: not counted twice
    assert gold_scores(run) == {1: GoldScore(3, 4)}


def test_a_malformed_answer_is_not_scored(pools, http_annotator, fake_llm):
    run = gold_run(pools)
    fake_llm.default = Reply(content="no marker at all")
    annotate(run, gold_ids(run)[:2])
    assert Outcome.objects.filter(status="malformed").count() == 2
    assert gold_scores(run) == {}


def test_the_window_keeps_the_last_n_answers(pools, http_annotator, fake_llm):
    run = gold_run(pools, min_items=2, window=3, threshold=0.1)
    gold = gold_ids(run)
    annotate(run, gold[:3])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[3:5])
    assert gold_scores(run) == {1: GoldScore(1, 3)}


def test_the_accuracy_is_rebuilt_from_the_store_when_redis_lost_it(pools, http_annotator, fake_llm):
    run = gold_run(pools, min_items=4, window=4, threshold=0.1)
    gold = gold_ids(run)
    annotate(run, gold[:2])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[2:5])
    before = gold_scores(run)
    get_redis().delete(gold_key(run.pk))
    assert gold_scores(run) == before == {1: GoldScore(1, 4)}
    get_redis().delete(gold_key(run.pk))
    annotate(run, gold[5:6])  # an append that finds nothing rebuilds from the store, this answer included
    assert gold_scores(run) == {1: GoldScore(0, 4)}


def test_a_redis_error_never_fails_the_annotation_and_the_answers_come_back_from_the_store(
        pools, http_annotator, fake_llm, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    import workers_app.engine.gold as gold_module

    run = gold_run(pools)
    gold = gold_ids(run)
    annotate(run, gold[:1])

    def down(*args, **kwargs):
        raise RedisDown("Redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(gold_module, "_append", down)
        annotate(run, gold[1:2])
    assert Outcome.objects.filter(sample_id__in=gold[:2]).count() == 2
    assert not get_redis().exists(gold_key(run.pk))  # dropped: it missed an answer
    assert gold_scores(run) == {1: GoldScore(2, 2)}


# -- the pause, the audit row and the alert


def test_falling_below_the_threshold_pauses_the_annotator_once_with_the_reason(pools, http_annotator, fake_llm):
    run = gold_run(pools, threshold=0.7, min_items=4)
    workers = launched(1)
    others = launched(2)
    gold = gold_ids(run)
    annotate(run, gold[:2])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[2:3])
    assert set(Worker.objects.filter(annotator__number=1).values_list("desired_state", flat=True)) == {
        "running"}  # 3 items: not judged yet
    annotate(run, gold[3:8])
    assert set(Worker.objects.filter(annotator__number=1).values_list("desired_state", flat=True)) == {"paused"}
    assert set(Worker.objects.filter(pk__in=[w.pk for w in others]).values_list("desired_state", flat=True)) == {
        "running"}
    events = WorkerEvent.objects.filter(reason="gold: gold accuracy 0.50 < 0.70 over 4 items")
    assert events.count() == len(workers) == 6
    [entry] = AuditLog.objects.filter(action="gold_check_failed")
    assert entry.target == "annotator 1" and entry.parameters["items"] == 4 and entry.parameters["run"] == run.name
    assert len(entry.detail["paused"]) == 6


def test_staff_resuming_an_annotator_still_below_is_not_overruled(pools, http_annotator, fake_llm):
    run = gold_run(pools, threshold=0.7, min_items=4)
    launched(1)
    fake_llm.default = Reply(content=WRONG)
    gold = gold_ids(run)
    annotate(run, gold[:4])
    Worker.objects.filter(annotator__number=1).update(desired_state=Worker.Desired.RUNNING)  # staff resumed
    annotate(run, gold[4:6])
    assert set(Worker.objects.filter(annotator__number=1).values_list("desired_state", flat=True)) == {"running"}
    assert AuditLog.objects.filter(action="gold_check_failed").count() == 1


def test_an_annotator_that_recovers_and_falls_again_is_paused_again(pools, http_annotator, fake_llm):
    run = gold_run(pools, threshold=0.7, min_items=2, window=2)
    launched(1)
    gold = gold_ids(run)
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[:2])
    Worker.objects.filter(annotator__number=1).update(desired_state=Worker.Desired.RUNNING)
    fake_llm.default = Reply(content=RIGHT)
    annotate(run, gold[2:4])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[4:5])
    assert AuditLog.objects.filter(action="gold_check_failed").count() == 2


def test_the_sweep_opens_one_alert_per_annotator_and_resolves_it_when_the_accuracy_recovers(
        pools, http_annotator, fake_llm):
    run = gold_run(pools, threshold=0.7, min_items=2, window=2)
    switch_run(run, actor="test")
    fake_llm.default = Reply(content=WRONG)
    gold = gold_ids(run)
    annotate(run, gold[:3])
    health_sweep()  # the beat's sweep runs the gold checks' part
    gold_sweep()
    [alert] = Alert.objects.filter(kind="gold")
    assert alert.key == f"gold:{run.name}:1" and "gold accuracy 0.00 < 0.70 over 2 items" in alert.message
    fake_llm.default = Reply(content=RIGHT)
    annotate(run, gold[3:5])
    gold_sweep()
    alert.refresh_from_db()
    assert alert.resolved_at is not None and Alert.objects.filter(kind="gold").count() == 1


# -- where gold items show


def test_gold_items_count_in_quality_and_are_marked_in_the_workbook(pools, http_annotator, fake_llm, tmp_path):
    work, _, reference = pools
    run = gold_run(pools, min_items=100)
    gold = gold_ids(run)
    annotate(run, work[:3] + gold[:4])
    [domain] = run_quality(run, reference, bootstrap=0).domains
    [annotator, *_] = domain.rows
    assert (annotator.result.n, annotator.result.accuracy.value) == (4, 1.0)
    report = consolidate(tmp_path / "c.xlsx", actor="test", run=run)
    rows = list(openpyxl.load_workbook(report.path)["urgency"].iter_rows(values_only=True))
    column = rows[0].index("gold item")
    assert rows[0][column + 1] == "post text"
    marked = {row[0] for row in rows[1:] if row[column] == "yes"}
    assert marked == set(Sample.objects.filter(pk__in=gold).values_list("external_id", flat=True))
    flat = [json.loads(line) for line in report.jsonl_path.read_text().splitlines()]
    assert {r["sample_id"] for r in flat if r["gold_item"]} == marked and len(flat) == 50
    with report.csv_path.open() as handle:
        assert next(csv.reader(handle))[-1] == "gold_item"


def test_a_run_without_gold_has_no_gold_column(pools, tmp_path):
    work, _, _ = pools
    run = create_run(RunPlan(name="plain", domains=["urgency"], corpora=[corpus_of(work)]), actor="test")
    report = consolidate(tmp_path / "c.xlsx", actor="test", run=run)
    rows = list(openpyxl.load_workbook(report.path)["urgency"].iter_rows(values_only=True))
    assert "gold item" not in rows[0] and "gold_item" not in report.csv_path.read_text().splitlines()[0]


def test_the_dashboard_cell_and_metrics_show_the_rolling_accuracy(pools, http_annotator, fake_llm, client, staff):
    run = gold_run(pools, threshold=0.7, min_items=2)
    switch_run(run, actor="test")
    launched(1)
    gold = gold_ids(run)
    annotate(run, gold[:1])
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold[1:3])
    client.force_login(staff)
    cell = client.get("/dashboard/live").json()["cells"]["annotator_1_urgency"]
    assert cell["display"]["gold"] == "gold 0.33 over 3" and cell["gold_failing"] is True
    assert "gold 0.33 over 3 (below the threshold)" in cell["display"]["summary"]
    assert client.get("/dashboard/live").json()["cells"]["annotator_1_therapeutic"]["gold"] == ""  # not in run
    page = client.get("/dashboard/").content.decode()
    assert 'data-field="gold">gold 0.33 over 3<' in page
    worker_page = client.get("/dashboard/workers/annotator_1_urgency/").content.decode()
    assert "1 of 3 gold answers of annotator 1 right (0.33), threshold 0.7 after 2" in worker_page
    assert "below the threshold" in worker_page
    metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'annotation_gold_accuracy{annotator="1"} 0.333' in metrics
    assert 'annotation_gold_answers{annotator="1"} 3.0' in metrics


# -- the runs pages


def test_the_runs_form_makes_a_run_with_gold_checks_and_its_page_shows_them(pools, http_annotator, fake_llm, client,
                                                                           staff):
    work, _, _ = pools
    client.force_login(staff)
    response = client.post("/runs/", {"name": "paged", "annotators": [1], "domains": ["urgency"],
                                      "corpora": [corpus_of(work)], "seed": "0", "gold_reference": "experts",
                                      "gold_share": "0.1", "gold_threshold": "0.8", "gold_min_items": "",
                                      "gold_window": ""})
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = Run.objects.get(name="paged")
    assert (run.gold_reference.name, run.gold_share, run.gold_threshold, run.gold_min_items, run.gold_window) == (
        "experts", 0.1, 0.8, 10, None)
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold_ids(run)[:1])
    page = client.get(response.url).content.decode()
    assert "Gold checks" in page and "4 gold items mixed in, share 0.1" in page
    assert "judged after 10 gold answers, over all of them" in page and "0 of 1 right (0.00)" in page


@pytest.mark.parametrize(("changes", "message"), [
    ({"gold_reference": "nope"}, "Select a valid choice. nope is not one of the available choices."),
    ({"gold_share": "0.9"}, "gold share 0.9: give a fraction above 0 and at most 0.5"),
    ({"gold_threshold": "nan"}, "Gold accuracy threshold: Enter a number."),
    ({"gold_window": "2"}, "gold window 2: it must hold at least the 10 items judged first"),
])
def test_a_refused_gold_setting_in_the_form_says_why_and_makes_nothing(pools, client, staff, changes, message):
    client.force_login(staff)
    response = client.post("/runs/", {"name": "paged", "annotators": [1], "domains": ["urgency"], "seed": "0",
                                      "gold_reference": "experts", **changes})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Run.objects.filter(name="paged").exists()


# -- archives and state documents


@pytest.mark.django_db(transaction=True)
def test_a_restore_gives_back_the_runs_gold_settings_and_items(pools, http_annotator, fake_llm):
    from django.conf import settings

    from admin_ops.services.archive import create_archive
    from admin_ops.services.reset import reset_data
    from admin_ops.services.restore import restore_archive
    from workers_app.models import ReferenceSet

    run = gold_run(pools, threshold=0.6, min_items=3, window=5)
    fake_llm.default = Reply(content=WRONG)
    annotate(run, gold_ids(run)[:2])
    marked = set(Sample.objects.filter(pk__in=gold_ids(run)).values_list("external_id", flat=True))
    archive = create_archive("with-gold", actor="test")
    reset_data(actor="test", factory=True, backup=False)
    ReferenceSet.objects.all().delete()  # its labels went with the samples: the archive brings both back

    restore_archive(settings.ARCHIVES_DIR / archive.file_name, actor="test")

    back = Run.objects.get(name="checked")
    assert (back.gold_reference.name, back.gold_share, back.gold_threshold, back.gold_min_items,
            back.gold_window) == ("experts", 0.25, 0.6, 3, 5)
    assert set(Sample.objects.filter(pk__in=gold_ids(back)).values_list("external_id", flat=True)) == marked
    assert gold_scores(back) == {1: GoldScore(0, 2)}  # rebuilt from the restored outcomes


def test_a_state_document_carries_the_gold_settings_and_a_bad_one_is_named(pools):
    from admin_ops.selectors import state_document
    from workers_app.runs.definitions import checked_run, run_set_problems

    run = gold_run(pools, window=8)
    [record] = [r for r in state_document()["runs"] if r["name"] == run.name]
    assert record["gold"] == {"reference": "experts", "share": 0.25, "threshold": 0.7, "min_items": 4, "window": 8,
                              "samples": sorted(Sample.objects.filter(pk__in=gold_ids(run))
                                                .values_list("external_id", flat=True))}
    assert checked_run(record, lambda name: f"run: {name}")[1] == []
    plain = {k: v for k, v in record.items() if k != "gold"}
    assert checked_run(plain, lambda name: f"run: {name}")[1] == []  # older documents have no gold
    for change, message in [({"share": 2}, "run: gold: gold share 2"), ({"window": "x"}, "run: gold.window: expected"),
                            ({"reference": "Bad Name"}, "run: gold.reference: 1-40 lower-case"),
                            ({"samples": ["NOT-A-MEMBER"]}, "run: gold.samples: 'NOT-A-MEMBER' is not a sample"),
                            ({"extra": 1}, "run: gold: unknown field 'extra'")]:
        problems = checked_run({**record, "gold": {**record["gold"], **change}}, lambda name: f"run: {name}")[1]
        assert any(message in p for p in problems), (change, problems)
    elsewhere = run_set_problems([{**record, "name": "moved"}], lambda index, name: f"run {index}: {name}",
                                 samples=set(record["samples"]), sample_source="the store", numbers={1},
                                 slugs={"urgency"}, references=set())
    assert elsewhere == [("run 0: gold.reference: reference set 'experts' is neither in the store nor in what is "
                         "restored")]
