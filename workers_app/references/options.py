"""How a reference file holds its labels, and how its values become codes: parsed from what a user typed (the
command's options, the workspace's form, the API's fields), checked against the catalogue before any file is read.

Wide form: one row per sample (and rater), one column per domain (``--label-column urgency=Label``, several at once).
Long form: one row per (sample, domain[, rater]) with a domain column and a label column.
A value map per domain says which code a file's value stands for (``--map urgency:Supportive=LEVEL_0``); a value the
map does not name must be a code of the domain itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from workers_app.importing.rows import Column, Columns, describe
from workers_app.models import Domain
from workers_app.models.catalogue import no_control_characters
from workers_app.review.services import allowed_codes, codes_problem

ID_FIELD, RATER_FIELD, DOMAIN_FIELD, LABEL_FIELD = "id", "rater", "domain", "label"
ID_CANDIDATES = ("id", "sample_id", "external_id", "post_id", "sample", "user")
MAX_MAP_VALUES = 1000  # per domain: a map is typed by hand; more is a mistake
MAX_VALUE_CHARS = 200
# Several codes of a set-valued domain in one cell: "TA-1, TA-5" or "TA-1; TA-5".
CODE_SEPARATORS = (",", ";")
# Every domain of these kinds has codes a reference label can be compared with; free-text lists have none.
CODED = (Domain.Kind.ORDINAL, Domain.Kind.NOMINAL, Domain.Kind.CODE_SET)


class ReferenceRefused(Exception):
    """The import, its options or the file have problems; nothing was written. ``problems`` lists each, naming the
    option, or the file, sheet, row and field."""

    def __init__(self, problems: list[object]):
        self.problems = [str(p) for p in problems]
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  … and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported:\n{shown}{more}")


@dataclass(frozen=True)
class Layout:
    """Which columns hold what. ``labels`` (wide form) maps a domain slug to its column; ``domain_column`` makes
    it the long form, whose labels are in ``value_column``."""

    id_column: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    domain_column: str | None = None
    value_column: str | None = None
    rater_column: str | None = None
    sheets: tuple[str, ...] = ()

    @property
    def long(self) -> bool:
        return self.domain_column is not None

    def columns(self) -> Columns:
        fields = [Column(ID_FIELD, self.id_column, ID_CANDIDATES, "--id-column")]
        if self.rater_column:
            fields.append(Column(RATER_FIELD, self.rater_column, (), "--rater-column"))
        if self.long:
            fields += [Column(DOMAIN_FIELD, self.domain_column, (), "--domain-column"),
                       Column(LABEL_FIELD, self.value_column, (LABEL_FIELD,), "--value-column")]
        else:
            fields += [Column(f"{LABEL_FIELD}:{slug}", column, (), f"--label-column {slug}=…")
                       for slug, column in self.labels.items()]
        return Columns(tuple(fields))

    def as_record(self) -> dict:
        return {"id_column": self.id_column, "labels": dict(self.labels), "domain_column": self.domain_column,
                "value_column": self.value_column, "rater_column": self.rater_column, "sheets": list(self.sheets)}


def _split(texts: list[str]) -> list[str]:
    """Options given one per argument, or several per text field one per line."""
    return [line.strip() for text in texts for line in str(text).splitlines() if line.strip()]


def _text_problem(what: str, text: str) -> str | None:
    if len(text) > MAX_VALUE_CHARS:
        return f"{what} is {len(text):,} characters; at most {MAX_VALUE_CHARS}"
    try:
        no_control_characters(text)
    except ValidationError:
        return f"{what} holds a control character"
    return None


def parse_label_columns(texts: list[str]) -> tuple[dict[str, str], list[str]]:
    """``DOMAIN=COLUMN`` texts as {domain: column}, and what is wrong with them."""
    columns: dict[str, str] = {}
    problems = []
    for text in _split(texts):
        domain, equals, column = text.partition("=")
        domain, column = domain.strip(), column.strip()
        if not equals or not domain or not column:
            problems.append(f"--label-column {text[:80]!r}: give DOMAIN=COLUMN, e.g. urgency=Label")
        elif domain in columns:
            problems.append(f"--label-column: domain {domain[:40]!r} is given twice")
        elif problem := _text_problem("the column name", column):
            problems.append(f"--label-column {domain[:40]}: {problem}")
        else:
            columns[domain] = column
    return columns, problems


def parse_value_map(texts: list[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``DOMAIN:VALUE=CODE`` texts as {domain: {value: code}}, and what is wrong with them. A value may hold ':'
    or '=' (the domain ends at the first ':', the code starts after the last '=')."""
    value_map: dict[str, dict[str, str]] = {}
    problems = []
    for text in _split(texts):
        domain, colon, rest = text.partition(":")
        value, equals, code = rest.rpartition("=")
        domain, value, code = domain.strip(), value.strip(), code.strip()
        if not colon or not equals or not domain or not value or not code:
            problems.append(f"--map {text[:80]!r}: give DOMAIN:VALUE=CODE, e.g. urgency:Supportive=LEVEL_0")
            continue
        mapped = value_map.setdefault(domain, {})
        if value in mapped and mapped[value] != code:
            problems.append(f"--map {domain[:40]}: value {value[:80]!r} maps to {mapped[value]} and to {code[:40]}")
        elif len(mapped) >= MAX_MAP_VALUES:
            problems.append(f"--map {domain[:40]}: more than {MAX_MAP_VALUES} values")
        elif problem := _text_problem("the value", value):
            problems.append(f"--map {domain[:40]}: {problem}")
        else:
            mapped[value] = code
    return value_map, problems


def _domain_problem(slug: str, domains: dict[str, Domain], option: str) -> str | None:
    domain = domains.get(slug)
    if domain is None:
        return f"{option}: no domain {slug[:40]!r}; the domains are {', '.join(domains) or 'none'}"
    if domain.kind not in CODED:
        return f"{option}: {slug} holds free text, which has no codes to compare with: choose a coded domain"
    return None


def checked_options(layout: Layout, value_map: dict[str, dict[str, str]]) -> tuple[dict[str, Domain], list[str]]:
    """The catalogue's domains by slug and every problem of the layout and map: unknown or free-text domains, a map
    to a code the domain does not have, a map of a domain the wide form does not read, columns named twice."""
    domains = {d.slug: d for d in Domain.objects.order_by("position", "slug")}
    problems = []
    if layout.long and layout.labels:
        problems.append("--label-column DOMAIN=COLUMN is the wide form, --domain-column the long form: give one")
    if not layout.long and not layout.labels:
        problems.append("give --label-column DOMAIN=COLUMN for each domain the file holds (wide form), or "
                        "--domain-column and --value-column (long form)")
    if not layout.long and layout.value_column:
        problems.append("--value-column belongs to the long form (with --domain-column)")
    problems += [p for slug in layout.labels if (p := _domain_problem(slug, domains, f"--label-column {slug}"))]
    for slug, mapped in value_map.items():
        problem = _domain_problem(slug, domains, f"--map {slug}")
        if problem is None and not layout.long and slug not in layout.labels:
            problem = f"--map {slug}: the file's domains are {', '.join(layout.labels)}; {slug} has no --label-column"
        if problem:
            problems.append(problem)
            continue
        for value, code in mapped.items():
            if codes_problem(domains[slug], [code]):
                problems.append(f"--map {slug}:{value[:80]}={code[:40]}: {code[:40]!r} is not a code of {slug} "
                                f"({', '.join(allowed_codes(domains[slug]))})")
    named = [c.wanted.strip().lower() for c in layout.columns().fields if c.wanted]
    problems += [f"the column {name!r} is named for two fields" for name in sorted({n for n in named
                                                                                    if named.count(n) > 1})]
    return domains, problems


def label_text(value: object) -> tuple[str, str]:
    """A label cell as text ("" when empty), and what is wrong with it."""
    if value is None:
        return "", ""
    if isinstance(value, str):
        return value.strip(), ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), ""
    return "", f"{describe(value)} where a label must be"


def codes_of(text: str, domain: Domain, mapped: dict[str, str]) -> tuple[list[str], str]:
    """The codes a label cell stands for, in catalogue order, and what is wrong with it."""
    if domain.kind == Domain.Kind.CODE_SET and text not in mapped:
        parts = [text]
        for separator in CODE_SEPARATORS:
            parts = [piece.strip() for part in parts for piece in part.split(separator)]
        parts = [part for part in parts if part]
    else:
        parts = [text]
    codes = [mapped.get(part, part) for part in parts]
    unknown = [part for part, code in zip(parts, codes, strict=True) if code not in allowed_codes(domain)]
    if unknown:
        shown = ", ".join(f"{value}={code}" for value, code in list(mapped.items())[:8])
        how = f"the map gives {shown}{' …' if len(mapped) > 8 else ''}" if mapped else \
            f"add --map {domain.slug}:VALUE=CODE"
        return [], (f"{unknown[0][:80]!r} maps to no code of {domain.slug} ({', '.join(allowed_codes(domain))}); "
                    f"{how}")
    problem = codes_problem(domain, codes)
    if problem:
        return [], f"{text[:80]!r}: {problem}"
    return [code for code in allowed_codes(domain) if code in codes], ""


def _given(text: str | None) -> str | None:
    """A column name, or None for an empty form field."""
    return (text or "").strip() or None


def layout_from_texts(*, id_column: str | None = None, label_columns: list[str] = (), domain_column: str | None = None,
                      value_column: str | None = None, rater_column: str | None = None, sheets: list[str] = (),
                      maps: list[str] = ()) -> tuple[Layout, dict[str, dict[str, str]]]:
    """The layout and value map from what a user typed (command options, form fields, API fields, each option
    once per argument or once per line); ReferenceRefused names every problem of the typing."""
    labels, problems = parse_label_columns(list(label_columns))
    value_map, map_problems = parse_value_map(list(maps))
    layout = Layout(id_column=_given(id_column), labels=labels, domain_column=_given(domain_column),
                    value_column=_given(value_column), rater_column=_given(rater_column),
                    sheets=tuple(_split(list(sheets))))
    if problems + map_problems:
        raise ReferenceRefused(problems + map_problems)
    return layout, value_map
