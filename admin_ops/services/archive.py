"""Archives: create (tar.gz + manifest.json of SHA-256 checksums), verify, and restore safely.

Layout of an archive (version 3):
    manifest.json                 format, version, created at/by, the run when it holds one run only, counts,
                                  and sha256 + size of every member
    state.json                    the exported state (catalogue, prices, runs, desired states, progress; no key)
    data/{runs,corpora,samples,outcomes,malformed,review,audit}.jsonl   (review since the review queue: optional)
    data/{references,reference_labels}.jsonl   the imported reference sets with their provenance, and their labels
    runs/{run}/annotations/annotator_{n}_{domain}.xlsx

Version 2 (before reference sets) has no reference members; it still verifies and restores.

Version 1 (before named runs) has no data/runs.jsonl, no run in its outcome and malformed lines, and its workbooks
as workbooks/annotator_{n}_{domain}.xlsx: all of it belongs to the default run. It still verifies and restores.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import django
from django.conf import settings
from django.utils import timezone

from admin_ops.models import Archive
from annotation_site.files import atomic_write, file_sha256
from audit.actions import Action
from audit.actors import Actor, actor_name
from audit.services import audited
from workers_app.models import DEFAULT_RUN, Run
from workers_app.runs.definitions import is_run_name
from workers_app.runs.files import annotations_dir

from ..selectors import state_document
from .progress import Progress, no_progress
from .snapshot import (
    audit_lines,
    corpora_lines,
    malformed_lines,
    outcomes_lines,
    reference_labels_lines,
    references_lines,
    review_lines,
    runs_lines,
    samples_lines,
)

FORMAT = "annotation-fleet-archive"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUNS_MEMBER = "data/runs.jsonl"
REFERENCE_MEMBERS = ("data/references.jsonl", "data/reference_labels.jsonl")
# Each writes the lines of its member, of one run or (None) of every run. The audit log is kept whole, also in the
# archive of one run: it is the history of every run.
DATA_MEMBERS = {RUNS_MEMBER: runs_lines, "data/corpora.jsonl": corpora_lines, "data/samples.jsonl": samples_lines,
                "data/outcomes.jsonl": outcomes_lines, "data/malformed.jsonl": malformed_lines,
                "data/review.jsonl": review_lines, "data/audit.jsonl": lambda run: audit_lines(),
                REFERENCE_MEMBERS[0]: references_lines, REFERENCE_MEMBERS[1]: reference_labels_lines}
MANIFEST = "manifest.json"
# Archives made before the review queue have no review member; they still verify and restore.
OPTIONAL_MEMBERS = ("data/review.jsonl",)
_BEFORE_REFERENCES = tuple(m for m in DATA_MEMBERS if m not in (*OPTIONAL_MEMBERS, *REFERENCE_MEMBERS))
REQUIRED_MEMBERS = {
    3: (*(m for m in DATA_MEMBERS if m not in OPTIONAL_MEMBERS), "state.json"),
    2: (*_BEFORE_REFERENCES, "state.json"),
    1: (*(m for m in _BEFORE_REFERENCES if m != RUNS_MEMBER), "state.json"),
}
WORKBOOK_FILE = re.compile(r"annotator_[0-9]+_[A-Za-z0-9_-]+\.xlsx")
LEGACY_WORKBOOKS = "workbooks"
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The archive is unusable; nothing was written."""


@dataclass
class Verification:
    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(timezone.now().timestamp())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_checked(tar: tarfile.TarFile, name: str, data: bytes, manifest: dict) -> None:
    _add(tar, name, data)
    manifest["members"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def workbook_place(name: str) -> tuple[str, str] | None:
    """The run and file name of workbook member ``name`` (a version 1 workbook belongs to the default run); None
    when ``name`` is not a workbook member."""
    parts = name.split("/")
    if len(parts) == 2 and parts[0] == LEGACY_WORKBOOKS and WORKBOOK_FILE.fullmatch(parts[1]):
        return DEFAULT_RUN, parts[1]
    if len(parts) == 4 and (parts[0], parts[2]) == ("runs", "annotations") and is_run_name(parts[1]) \
            and WORKBOOK_FILE.fullmatch(parts[3]):
        return parts[1], parts[3]
    return None


def _layout_versions(name: str) -> tuple[int, ...]:
    """The archive versions whose layout has member ``name``."""
    if name in REFERENCE_MEMBERS:
        return (3,)
    if name == RUNS_MEMBER or name.startswith("runs/"):
        return 2, 3
    return (1,) if name.startswith(f"{LEGACY_WORKBOOKS}/") else READABLE_VERSIONS


def _run_workbooks(runs: list[Run]) -> Iterator[tuple[str, Path]]:
    for run in runs:
        for workbook in sorted(annotations_dir(run).glob("annotator_*.xlsx")):
            member = f"runs/{run.name}/annotations/{workbook.name}"
            if workbook_place(member):  # a stray copy would fail verification
                yield member, workbook


def _write_tar(temp: Path, manifest: dict, run: Run | None, step: Progress) -> None:
    workbooks = list(_run_workbooks([run] if run else list(Run.objects.order_by("name"))))
    steps = len(DATA_MEMBERS) + 1 + len(workbooks)
    with tarfile.open(temp, mode="w:gz") as tar:
        for done, (member, lines) in enumerate(DATA_MEMBERS.items()):
            step(done, steps, member)
            data = "".join(lines(run)).encode()
            manifest["counts"][member.split("/")[1].split(".")[0]] = data.count(b"\n")
            _add_checked(tar, member, data, manifest)
        step(len(DATA_MEMBERS), steps, "state.json")
        _add_checked(tar, "state.json", json.dumps(state_document(), indent=1, sort_keys=True).encode(), manifest)
        for done, (member, workbook) in enumerate(workbooks, start=len(DATA_MEMBERS) + 1):
            step(done, steps, member)
            _add_checked(tar, member, workbook.read_bytes(), manifest)
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    step(steps, steps, "done")


def _archived_run(name: str | None) -> Run | None:
    if name is None:
        return None
    run = Run.objects.filter(name=name).first()
    if run is None:
        known = ", ".join(Run.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise ArchiveError(f"no run named {name!r:.50}; the runs are {known}")
    return run


def archive_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new archive, or None."""
    if not NAME.fullmatch(name):
        return (f"archive name {name[:100]!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit")
    if Archive.objects.filter(name=name).exists():
        return f"an archive named {name!r} exists already"
    return None


def create_archive(name: str, *, actor: Actor, run: str | None = None, progress: Progress | None = None) -> Archive:
    """Write DATA_DIR/archives/NAME.tar.gz of everything, or of the run named ``run`` only (its outcomes, malformed
    attempts and workbooks, the samples and corpora they need; the catalogue state and audit log as always).
    ``progress(done, total, stage)`` hears of each member written."""
    problem = archive_name_problem(name)
    if problem:
        raise ArchiveError(problem)
    settings.ARCHIVES_DIR.mkdir(parents=True, exist_ok=True)
    target = settings.ARCHIVES_DIR / f"{name}.tar.gz"
    with audited(Action.CREATE_ARCHIVE, actor=actor, target=name, parameters={"name": name, "run": run},
                 atomic=False) as entry:
        scope = _archived_run(run)
        manifest = {"format": FORMAT, "version": VERSION, "created_at": timezone.now().isoformat(),
                    "created_by": actor_name(actor), "django": django.get_version(), "run": run, "members": {},
                    "counts": {}}
        atomic_write(target, lambda temp: _write_tar(temp, manifest, scope,
                                                       progress or no_progress))
        archive = Archive.objects.create(name=name, file_name=target.name, sha256=file_sha256(target),
                                         size=target.stat().st_size, counts=manifest["counts"],
                                         created_by=actor_name(actor))
        entry.detail = {"file": str(target), "counts": manifest["counts"], "size": archive.size}
    return archive


def _unsafe(member: tarfile.TarInfo) -> str:
    name = member.name
    if name.startswith("/") or Path(name).is_absolute():
        return "absolute path"
    if ".." in Path(name).parts:
        return "path with '..'"
    if member.issym() or member.islnk():
        return "link"
    if not (member.isfile() or member.isdir()):
        return "device or special file"
    try:
        tarfile.data_filter(member, str(settings.ARCHIVES_DIR))  # the standard library's own verdict too
    except tarfile.FilterError as exc:
        return str(exc)
    if member.isfile() and not _known_member(name):
        return "not a member of an archive of this console"
    if member.size > settings.ARCHIVE_MAX_MEMBER_BYTES:
        return (f"{member.size:,} bytes, more than the limit of {settings.ARCHIVE_MAX_MEMBER_BYTES:,} "
                "(ARCHIVE_MAX_MEMBER_MB)")
    return ""


def _known_member(name: str) -> bool:
    return name in (MANIFEST, *REQUIRED_MEMBERS[VERSION], *OPTIONAL_MEMBERS) or workbook_place(name) is not None


@contextmanager
def _reading(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive opened for reading; whatever makes it unreadable on the way becomes one ArchiveError."""
    if not path.is_file():
        raise ArchiveError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            yield tar
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path.name}: not a readable tar.gz archive, or a damaged or truncated one ({exc})") \
            from exc


def _member_problems(members: list[tarfile.TarInfo]) -> list[str]:
    problems, seen = [], set()
    for member in members:
        why = _unsafe(member) or ("appears twice" if member.name in seen else "")
        if why:
            problems.append(f"{member.name}: refused ({why})")
        seen.add(member.name)
    return problems


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bad_facts(facts: object) -> bool:
    return not (isinstance(facts, dict) and set(facts) == {"sha256", "size"} and isinstance(facts["sha256"], str)
                and SHA256.fullmatch(facts["sha256"]) and _is_size(facts["size"]))


def _manifest_problems(manifest: object) -> list[str]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not _is_size(manifest.get("version")) or manifest["version"] not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS[:-1])) + f" or {READABLE_VERSIONS[-1]}"
        return [f"{MANIFEST}: not a version {readable} {FORMAT} manifest"]
    version = manifest["version"]
    problems = []
    if not isinstance(manifest.get("created_at"), str):
        problems.append(f"{MANIFEST}: created_at: expected text")
    if manifest.get("run") is not None and not is_run_name(manifest["run"]):
        problems.append(f"{MANIFEST}: run: expected the name of a run, or null")
    counts = manifest.get("counts")
    if not isinstance(counts, dict) or not all(_is_size(n) for n in counts.values()):
        problems.append(f"{MANIFEST}: counts: expected an object of whole numbers")
    members = manifest.get("members")
    if not isinstance(members, dict):
        return [*problems, f"{MANIFEST}: members: expected an object of member name -> {{sha256, size}}"]
    problems += [f"{MANIFEST}: members: {name!r:.120}: expected {{sha256: 64 hex digits, size: a whole number}}"
                 for name, facts in members.items() if _bad_facts(facts)]
    problems += [f"{MANIFEST}: members: {name} is not listed" for name in REQUIRED_MEMBERS[version]
                 if name not in members]
    problems += [f"{MANIFEST}: members: {name!r:.120} is not a member of a version {version} archive"
                 for name in members if version not in _layout_versions(name)]
    return problems


def _read_manifest(tar: tarfile.TarFile, files: dict[str, tarfile.TarInfo]) -> tuple[dict, list[str]]:
    if MANIFEST not in files:
        return {}, [f"{MANIFEST}: missing"]
    if files[MANIFEST].size > MANIFEST_MAX_BYTES:
        return {}, [f"{MANIFEST}: refused ({files[MANIFEST].size:,} bytes, more than {MANIFEST_MAX_BYTES:,})"]
    try:
        manifest = json.loads(tar.extractfile(files[MANIFEST]).read())
    except RecursionError:
        return {}, [f"{MANIFEST}: not JSON (nested too deeply)"]
    except ValueError as exc:
        return {}, [f"{MANIFEST}: not JSON ({exc})"]
    return manifest, _manifest_problems(manifest)


def _member_sha256(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    handle = tar.extractfile(member)
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _checksum_problems(tar: tarfile.TarFile, files: dict[str, tarfile.TarInfo], expected: dict) -> list[str]:
    problems = []
    for name, facts in sorted(expected.items()):
        if name not in files:
            problems.append(f"{name}: missing from the archive")
        elif files[name].size != facts["size"] or _member_sha256(tar, files[name]) != facts["sha256"].lower():
            problems.append(f"{name}: checksum mismatch")
    problems += [f"{name}: not in the manifest" for name in sorted(set(files) - set(expected) - {MANIFEST})]
    return problems


def _verified(tar: tarfile.TarFile) -> tuple[dict, list[str]]:
    members = tar.getmembers()
    problems = _member_problems(members)
    if problems:
        return {}, problems
    files = {m.name: m for m in members if m.isfile()}
    manifest, problems = _read_manifest(tar, files)
    if problems:
        return {}, problems
    return manifest, _checksum_problems(tar, files, manifest["members"])


def verify_archive(path: str | Path) -> Verification:
    """Check every member's name, type and size, the manifest's schema, then every checksum, streaming each member
    through SHA-256; report each problem by member name."""
    result = Verification(Path(path))
    try:
        with _reading(result.path) as tar:
            result.manifest, result.problems = _verified(tar)
    except ArchiveError as exc:
        result.problems = [str(exc)]
    if result.problems:
        result.manifest = {}
    return result


def verify_and_record(archive: Archive, *, actor: Actor) -> Verification:
    with audited(Action.VERIFY_ARCHIVE, actor=actor, target=archive.name) as entry:
        result = verify_archive(settings.ARCHIVES_DIR / archive.file_name)
        Archive.objects.filter(pk=archive.pk).update(verified_at=timezone.now(), verify_ok=result.ok)
        entry.detail = {"ok": result.ok, "problems": result.problems}
    return result


def read_members(path: Path, expected: dict[str, dict]) -> dict[str, bytes]:
    """The bytes of every member a verified manifest lists, read in memory (nothing is ever extracted by its path)
    and checked again, so that a file replaced after its verification is refused too."""
    found = {}
    with _reading(path) as tar:
        for member in tar.getmembers():
            facts = expected.get(member.name)
            if member.isfile() and facts is not None and member.size == facts["size"]:
                found[member.name] = tar.extractfile(member).read()
    for name, facts in sorted(expected.items()):
        if name not in found or hashlib.sha256(found[name]).hexdigest() != facts["sha256"].lower():
            raise ArchiveError(f"{name}: changed since the archive was verified; nothing was restored")
    return found


AUTO_PREFIX = "auto-"


def scheduled_archive(*, keep: int) -> Archive:
    """The daily beat job: write an archive, then delete the automatic ones beyond the newest ``keep``."""
    archive = create_archive(f"{AUTO_PREFIX}{timezone.now():%Y%m%d-%H%M%S-%f}"[:-3], actor="system:beat")
    for old in Archive.objects.filter(name__startswith=AUTO_PREFIX).order_by("-created_at", "-id")[keep:]:
        with audited(Action.PRUNE_ARCHIVE, actor="system:beat", target=old.name, parameters={"keep": keep}):
            (settings.ARCHIVES_DIR / old.file_name).unlink(missing_ok=True)
            old.delete()
    return archive
