"""bench/report: the README's performance table, made from bench/results/*.json, so no figure there is typed by hand.

Every figure a bench declares (its module-level FIGURES: what it measures, unit, goal, baseline) is one row; the
result and the baseline come from that bench's last full run (bench/results/<bench>.json), or the row says "not
measured yet". Quick runs (bench/results/quick/) are never shown.

Run: .venv/bin/python bench/report.py            rewrite the table between the README's perf markers
     .venv/bin/python bench/report.py --check    exit 1 if the README's table is not what the results give
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
START, END = "<!-- perf:start -->", "<!-- perf:end -->"
NOT_MEASURED = "not measured yet"
GOAL = re.compile(r"(<=|>=|==|<|>)\s*(-?[0-9.]+)")
SYMBOLS = {"<=": "≤", ">=": "≥", "==": "=", "<": "<", ">": ">"}


class ReportError(RuntimeError):
    pass


def bench_files() -> list[Path]:
    """The benchmarks: every bench/*.py but the shared helpers (_*.py) and this report."""
    return sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "report.py")


class _Constants(ast.NodeTransformer):
    """Names of the module's literal constants (``BASELINE = "..."``) replaced by their values."""

    def __init__(self, values: dict[str, object]):
        self.values = values

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(self.values[node.id]) if node.id in self.values else node


def declared_figures(path: Path) -> dict[str, dict]:
    """A bench's FIGURES, read from its source (importing a bench would set up Django and more): a literal dict,
    which may name the module's literal constants."""
    constants: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        try:
            value = ast.literal_eval(_Constants(constants).visit(node.value))
        except ValueError as exc:
            if name == "FIGURES":
                raise ReportError(f"{path.name}: FIGURES must be a literal dict (of literals and constants): "
                                  f"{exc}") from exc
            continue
        if name != "FIGURES":
            constants[name] = value
        else:
            figures = value
            for name, figure in figures.items():
                missing = {"about", "unit"} - set(figure)
                if missing:
                    raise ReportError(f"{path.name}: figure {name!r} lacks {', '.join(sorted(missing))}")
                if "goal" in figure:
                    goal_parts(figure["goal"], f"{path.name}: figure {name!r}")
            return figures
    raise ReportError(f"{path.name} declares no module-level FIGURES")


def goal_parts(goal: str, where: str) -> tuple[str, str]:
    found = GOAL.fullmatch(goal.strip())
    if not found:
        raise ReportError(f"{where}: goal {goal!r} is not like '<= 0.2', '>= 300' or '== 0'")
    return found.group(1), found.group(2)


def goal_text(goal: str, unit: str, where: str) -> str:
    """``<= 1000`` in ms: ``≤ 1,000 ms`` (the number as the bench wrote it, thousands separated)."""
    op, target = goal_parts(goal, where)
    shown = f"{int(target):,}" if target.isdigit() else target
    return f"{SYMBOLS[op]} {shown} {unit}"


def goal_met(goal: str, value: float) -> bool:
    op, target = goal_parts(goal, "goal")
    target = float(target)
    return {"<=": value <= target, ">=": value >= target, "==": value == target, "<": value < target,
            ">": value > target}[op]


def number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def amount(value: float, unit: str) -> str:
    return f"{number(value)} {unit}" if unit else number(value)  # a score (accuracy, kappa) has no unit


def measured(figure: dict, unit: str) -> str:
    """The median, and the spread and repetitions it came from."""
    if figure["repetitions"] == 1:
        return f"{amount(figure['median'], unit)} (n = 1)"
    return (f"{amount(figure['median'], unit)} (median; {number(figure['min'])}–{number(figure['max'])}, "
            f"n = {figure['repetitions']})")


def load_results(name: str, results: Path) -> dict | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    if document.get("quick"):
        raise ReportError(f"{path}: a --quick run's results; only full runs belong in {results}")
    return document


def rows_for(path: Path, results: Path) -> list[str]:
    name = path.stem
    declared = declared_figures(path)
    document = load_results(name, results)
    found = {f["name"]: f for f in document["figures"]} if document else {}
    unknown = sorted(set(found) - set(declared))
    if unknown:
        raise ReportError(f"{name}.json has figures that bench/{path.name} does not declare: {', '.join(unknown)}")
    rows = []
    for figure_name, figure in declared.items():
        unit, goal = figure["unit"], figure.get("goal")
        target = goal_text(goal, unit, f"{path.name}: figure {figure_name!r}") if goal else "—"
        got = found.get(figure_name)
        if got is None:
            result, baseline, when = NOT_MEASURED, figure.get("baseline", "—"), "—"
        else:
            result = measured(got, unit)
            if got.get("note"):
                result += f"; {got['note']}"
            if "baseline" in got:
                baseline = f"{got['baseline']['about']}: {measured(got['baseline'], unit)}"
            else:
                baseline = f"{figure['baseline']}: not measured in this run" if "baseline" in figure else "—"
            if goal:
                target += " (met)" if goal_met(goal, got["median"]) else " (**not met**)"
            when = f"{document['date'][:10]}, {document['commit'][:7]}" + (
                " + changes" if document.get("uncommitted_changes") else "")
        rows.append(f"| `bench/{path.name}` | {figure['about']} | {result} | {baseline} | {target} | {when} |")
    return rows


def runs_of(results: Path) -> list[str]:
    """How each measured bench was run: its command line and machine."""
    lines = []
    for path in bench_files():
        document = load_results(path.stem, results)
        if document:
            m = document["machine"]
            load = document["load_average"]
            lines.append(f"- `bench/{path.name}`: `{document['command']}` on {m['cpus']} × {m['cpu_model']}, "
                         f"Python {m['python']}, database {m['database']}; {number(document['seconds'])} s, load "
                         f"average {load['before']:.1f} before, {load['after']:.1f} after")
    return lines


def render(results: Path = BENCH / "results") -> str:
    header = ("| benchmark | what it measures | result | baseline, same run | goal | measured |\n"
              "| --- | --- | --- | --- | --- | --- |")
    rows = [row for path in bench_files() for row in rows_for(path, results)]
    runs = runs_of(results)
    text = "\n".join([header, *rows])
    if runs:
        text += "\n\nHow each was run:\n\n" + "\n".join(runs)
    return f"{START}\n{text}\n{END}"


def replace_block(readme: str, block: str) -> str:
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ReportError(f"the README needs exactly one {START} followed by one {END}")
    before, rest = readme.split(START)
    return before + block + rest.split(END)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table differs from the results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    try:
        readme = args.readme.read_text()
        wanted = replace_block(readme, render(args.results))
    except ReportError as exc:
        print(f"bench/report.py: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if wanted == readme:
            print("the README's performance table matches bench/results")
            return 0
        sys.stdout.writelines(difflib.unified_diff(readme.splitlines(keepends=True), wanted.splitlines(keepends=True),
                                                   "README.md", "README.md from bench/results"))
        print("the README's performance table is not what bench/results gives: run .venv/bin/python bench/report.py",
              file=sys.stderr)
        return 1
    if wanted != readme:
        args.readme.write_text(wanted)
        print(f"updated the performance table in {args.readme}")
    else:
        print("the performance table is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
