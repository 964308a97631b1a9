"""A run's definition as archives and state documents hold it: its fields, what it pinned and its member samples by
external id (never row ids), checked by the model's own field rules before a restore or an import makes the run.

Making runs here is a step of an audited restore or import, never an action of its own; none becomes current here.
"""

from __future__ import annotations

from collections.abc import Callable

from annotation_site.field_rules import field_problem
from workers_app.models import Annotator, Domain, ReferenceSet, Run, RunSample, Sample
from workers_app.models.reference import REFERENCE_NAME
from workers_app.models.runs import RESERVED_NAMES, RUN_NAME
from workers_app.runs.current import PINNED_ANNOTATOR_FIELDS, PINNED_DOMAIN_FIELDS
from workers_app.runs.gold import GoldPlan, GoldRefused

MEMBER_BATCH = 2000
NULLABLE_TEXT = (str, type(None))
# What a definition holds: each field with the JSON kind it takes.
RUN_FIELDS: dict[str, type | tuple] = {
    "name": str, "description": str, "is_current": bool, "all_samples": bool, "selection": dict, "annotators": list,
    "domains": list, "pinned": dict, "code_version": str, "budget": NULLABLE_TEXT, "created_by": str,
    "created_at": str, "started_at": NULLABLE_TEXT, "samples": list}
# Fields a definition may lack: those of settings added after definitions were first written.
OPTIONAL_FIELDS: dict[str, type | tuple] = {"gold": dict}
GOLD_FIELDS: dict[str, type | tuple] = {"reference": str, "share": (int, float), "threshold": (int, float),
                                        "min_items": int, "window": (int, type(None)), "samples": list}
KIND_NAMES = {str: "text", bool: "true or false", dict: "an object", list: "a list", NULLABLE_TEXT: "text or null",
              int: "a whole number", (int, float): "a number", (int, type(None)): "a whole number or null"}
CHECKED_BY_THE_MODEL = ("description", "code_version", "budget", "created_by", "created_at", "started_at")
# What says what a run's outcomes mean: a run the store has already must agree on it.
DEFINING = ("all_samples", "annotators", "domains", "pinned")
PINNED_PARTS = {"annotators": (Annotator, PINNED_ANNOTATOR_FIELDS), "domains": (Domain, PINNED_DOMAIN_FIELDS)}

Where = Callable[[str], str]


def is_run_name(value: object) -> bool:
    """A name a run may have; whole-string, since the validator's $ lets a name end in a newline (a folder)."""
    return isinstance(value, str) and RUN_NAME.regex.fullmatch(value) is not None


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _gold_definition(run: Run) -> dict:
    """A run's gold settings with its gold items by external id (present only for a run with gold checks)."""
    return {"reference": run.gold_reference.name, "share": run.gold_share, "threshold": run.gold_threshold,
            "min_items": run.gold_min_items, "window": run.gold_window,
            "samples": list(Sample.objects.filter(run_members__run=run, run_members__gold=True)
                            .order_by("external_id").values_list("external_id", flat=True))}


def run_definition(run: Run) -> dict:
    members = [] if run.all_samples else list(
        Sample.objects.filter(run_members__run=run).order_by("external_id").values_list("external_id", flat=True))
    gold = {"gold": _gold_definition(run)} if run.checks_gold else {}
    return {**gold, "name": run.name, "description": run.description, "is_current": run.is_current,
            "all_samples": run.all_samples, "selection": run.selection, "annotators": run.annotators,
            "domains": run.domains, "pinned": run.pinned, "code_version": run.code_version,
            "budget": None if run.budget is None else str(run.budget), "created_by": run.created_by,
            "created_at": _iso(run.created_at), "started_at": _iso(run.started_at), "samples": members}


def _fits(value: object, kind: type | tuple) -> bool:
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _shape_problems(record: dict, where: Where, fields: dict, optional: dict | None = None,
                    prefix: str = "") -> list[str]:
    known = {**fields, **(optional or {})}
    problems = [f"{where(prefix.rstrip('.'))}: missing field '{name}'" for name in fields if name not in record]
    problems += [f"{where(prefix.rstrip('.'))}: unknown field '{name:.60}'" for name in sorted(set(record) - set(known))]
    problems += [f"{where(prefix + name)}: expected {KIND_NAMES[kind]}" for name, kind in known.items()
                 if name in record and not _fits(record[name], kind)]
    return problems


def _gold_problems(record: dict, where: Where) -> list[str]:
    """A definition's gold settings: their shape, their values (as a new run's are checked), and gold items that
    are members of the run."""
    gold = record["gold"]
    problems = _shape_problems(gold, where, GOLD_FIELDS, prefix="gold.")
    if problems:
        return problems
    if not REFERENCE_NAME.regex.fullmatch(gold["reference"]):
        problems.append(f"{where('gold.reference')}: {REFERENCE_NAME.message}")
    try:
        GoldPlan(None, share=gold["share"], threshold=gold["threshold"], min_items=gold["min_items"],
                 window=gold["window"]).check()
    except GoldRefused as exc:
        problems.append(f"{where('gold')}: {exc}")
    members = set(record["samples"])
    outside = [s for s in gold["samples"] if not isinstance(s, str) or s not in members]
    if outside:
        problems.append(f"{where('gold.samples')}: {outside[0]!r:.80} is not a sample of the run"
                        + (f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""))
    return problems


def _first_repeat(values: list) -> object:
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _list_problems(record: dict, where: Where) -> list[str]:
    problems = []
    if not all(_fits(n, int) for n in record["annotators"]):
        problems.append(f"{where('annotators')}: expected a list of annotator numbers")
    for name, what in (("domains", "domain slugs"), ("samples", "sample ids")):
        if not all(isinstance(item, str) for item in record[name]):
            problems.append(f"{where(name)}: expected a list of {what}")
    if record["all_samples"] and record["samples"]:
        problems.append(f"{where('samples')}: a run of every sample lists no members")
    for name in ("annotators", "domains", "samples"):
        repeated = _first_repeat(record[name]) if not problems else None
        if repeated is not None:
            problems.append(f"{where(name)}: listed twice: {repeated!r:.80}")
    return problems


def _pinned_row(part: str, key: str, row: dict, where: Where) -> tuple[dict, list[str]]:
    model, fields = PINNED_PARTS[part]
    values, problems = {}, []
    if part == "annotators" and not key.isdigit():
        problems.append(f"{where(f'pinned.annotators.{key:.40}')}: expected an annotator number")
    for name, raw in row.items():
        place = where(f"pinned.{part}.{key:.40}.{name:.40}")
        if name not in fields:
            problems.append(f"{place}: not a setting a run pins")
            continue
        values[name], problem = field_problem(model, name, raw)
        if problem:
            problems.append(f"{place}: {problem}")
    return values, problems


def _pinned(pinned: dict, where: Where) -> tuple[dict, list[str]]:
    """What a run pinned, each value as its catalogue field stores it: a value a worker could not use is refused."""
    values: dict = {}
    problems = []
    for part, rows in pinned.items():
        if part not in PINNED_PARTS:
            problems.append(f"{where('pinned')}: unknown part '{part:.40}'; a run pins only "
                            f"{' and '.join(PINNED_PARTS)}")
        elif not isinstance(rows, dict) or not all(isinstance(row, dict) for row in rows.values()):
            problems.append(f"{where(f'pinned.{part}')}: expected an object of objects")
        else:
            values[part] = {}
            for key, row in rows.items():
                values[part][key], found = _pinned_row(part, key, row, where)
                problems += found
    return values, problems


def checked_run(record: object, where: Where) -> tuple[dict, list[str]]:
    """The definition as the run stores it (members aside: ``samples`` stays a list of external ids) and every
    problem, each named by ``where(field)``."""
    if not isinstance(record, dict):
        return {}, [f"{where('')}: expected an object"]
    problems = _shape_problems(record, where, RUN_FIELDS, OPTIONAL_FIELDS)
    if problems:
        return {}, problems
    problems = _list_problems(record, where) + (_gold_problems(record, where) if "gold" in record else [])
    if not is_run_name(record["name"]):
        problems.append(f"{where('name')}: {RUN_NAME.message}")
    elif record["name"] in RESERVED_NAMES:
        problems.append(f"{where('name')}: {record['name']!r} is reserved for a page of the workspace")
    values = dict(record)
    for name in CHECKED_BY_THE_MODEL:
        values[name], problem = field_problem(Run, name, record[name])
        if problem:
            problems.append(f"{where(name)}: {problem}")
    values["pinned"], pinned_problems = _pinned(record["pinned"], where)
    return values, problems + pinned_problems


def _unknown(asked: list, known: set, what: str, source: str) -> str:
    missing = [item for item in asked if item not in known]
    if not missing:
        return ""
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return f"{what} {missing[0]!r:.80} is not in {source}{more}"


def _reference_problems(index: int, run: dict, where: Callable[[int, str], str], *, samples: set[str],
                        sample_source: str, numbers: set[int], slugs: set[str]) -> list[str]:
    problems = []
    for field, asked, known, what, source in (
            ("samples", run["samples"], samples, "sample", sample_source),
            ("annotators", run["annotators"], numbers, "annotator", "the catalogue"),
            ("domains", run["domains"], slugs, "domain", "the catalogue")):
        unknown = _unknown(asked, known, what, source)
        if unknown:
            problems.append(f"{where(index, field)}: {unknown}")
    return problems


def _store_disagreement(run: dict, stored: dict[str, dict]) -> str:
    known = stored.get(run["name"])
    if known is None:
        return ""
    differ = [name for name in DEFINING if known[name] != run[name]]
    return f"the store has a run {run['name']!r} with other {', '.join(differ)}" if differ else ""


def run_set_problems(runs: list[dict], where: Callable[[int, str], str], *, samples: set[str], sample_source: str,
                     numbers: set[int], slugs: set[str], references: set[str] | None = None) -> list[str]:
    """What is wrong between checked definitions and with the store: a name given twice, two current runs, a
    sample, annotator or domain nobody has, a gold reference set missing from ``references`` (the store's when
    None), a run the store has with other settings."""
    if references is None:
        references = set(ReferenceSet.objects.values_list("name", flat=True))
    first_name: dict[str, int] = {}
    stored = {r["name"]: r for r in Run.objects.values("name", *DEFINING)}
    currents = [index for index, run in enumerate(runs) if run["is_current"]]
    problems = [f"{where(index, 'is_current')}: {where(currents[0], '')} is current too; at most one run is current"
                for index in currents[1:]]
    for index, run in enumerate(runs):
        if run["name"] in first_name:
            problems.append(f"{where(index, 'name')}: run {run['name']!r} is given twice (also "
                            f"{where(first_name[run['name']], '')})")
        first_name.setdefault(run["name"], index)
        problems += _reference_problems(index, run, where, samples=samples, sample_source=sample_source,
                                        numbers=numbers, slugs=slugs)
        if "gold" in run and run["gold"]["reference"] not in references:
            problems.append(f"{where(index, 'gold.reference')}: reference set {run['gold']['reference']!r} is "
                            "neither in the store nor in what is restored")
        disagreement = _store_disagreement(run, stored)
        if disagreement:
            problems.append(f"{where(index, '')}: {disagreement}; a run's settings do not change")
    return problems


def missing_runs(runs: list[dict]) -> list[dict]:
    known = set(Run.objects.values_list("name", flat=True))
    return [run for run in runs if run["name"] not in known]


def create_runs(runs: list[dict]) -> None:
    """Make the runs of ``runs`` (checked definitions) the store lacks, with their members; none becomes current."""
    missing = missing_runs(runs)
    samples = dict(Sample.objects.values_list("external_id", "pk")) if missing else {}
    for spec in missing:
        values = {name: spec[name] for name in RUN_FIELDS if name not in ("is_current", "samples", "created_at")}
        gold = spec.get("gold")
        if gold is not None:
            values.update(gold_reference=ReferenceSet.objects.get(name=gold["reference"]), gold_share=gold["share"],
                          gold_threshold=gold["threshold"], gold_min_items=gold["min_items"],
                          gold_window=gold["window"])
        golden = set(gold["samples"]) if gold else set()
        run = Run.objects.create(**values)
        Run.objects.filter(pk=run.pk).update(created_at=spec["created_at"])  # auto_now_add ignored the given one
        RunSample.objects.bulk_create((RunSample(run=run, sample_id=samples[external_id], gold=external_id in golden)
                                       for external_id in spec["samples"]), batch_size=MEMBER_BATCH)
