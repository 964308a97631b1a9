"""Archives: create (tar.gz + manifest.json of SHA-256 checksums), verify, and restore safely.

Layout of an archive:
    manifest.json                 format, version, created at/by, counts, and sha256 + size of every member
    state.json                    the exported state (catalogue, desired states, progress; never a key)
    data/{corpora,samples,outcomes,malformed,audit}.jsonl
    workbooks/annotator_{n}_{domain}.xlsx
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
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

from ..selectors import state_document
from .snapshot import audit_lines, corpora_lines, malformed_lines, outcomes_lines, samples_lines

FORMAT = "annotation-fleet-archive"
VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DATA_MEMBERS = {"data/corpora.jsonl": corpora_lines, "data/samples.jsonl": samples_lines,
                "data/outcomes.jsonl": outcomes_lines, "data/malformed.jsonl": malformed_lines,
                "data/audit.jsonl": audit_lines}


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


def _write_tar(temp: Path, manifest: dict) -> None:
    with tarfile.open(temp, mode="w:gz") as tar:
        for member, lines in DATA_MEMBERS.items():
            data = "".join(lines()).encode()
            manifest["counts"][member.split("/")[1].split(".")[0]] = data.count(b"\n")
            _add_checked(tar, member, data, manifest)
        _add_checked(tar, "state.json", json.dumps(state_document(), indent=1, sort_keys=True).encode(), manifest)
        for workbook in sorted(settings.ANNOTATIONS_DIR.glob("annotator_*.xlsx")):
            _add_checked(tar, f"workbooks/{workbook.name}", workbook.read_bytes(), manifest)
        _add(tar, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())


def create_archive(name: str, *, actor: Actor) -> Archive:
    if not NAME.match(name):
        raise ArchiveError(f"archive name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a "
                           "letter or digit")
    if Archive.objects.filter(name=name).exists():
        raise ArchiveError(f"an archive named {name!r} exists already")
    settings.ARCHIVES_DIR.mkdir(parents=True, exist_ok=True)
    target = settings.ARCHIVES_DIR / f"{name}.tar.gz"
    with audited(Action.CREATE_ARCHIVE, actor=actor, target=name, parameters={"name": name}, atomic=False) as entry:
        manifest = {"format": FORMAT, "version": VERSION, "created_at": timezone.now().isoformat(),
                    "created_by": actor_name(actor), "django": django.get_version(), "members": {}, "counts": {}}
        atomic_write(target, lambda temp: _write_tar(temp, manifest))
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
    return ""


def _open(path: Path) -> tarfile.TarFile:
    if not path.exists():
        raise ArchiveError(f"{path}: no such file")
    try:
        return tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{path.name}: not a readable tar.gz archive ({exc})") from exc


def verify_archive(path: str | Path) -> Verification:
    """Recompute every member's checksum against the manifest; report each mismatch by member name."""
    result = Verification(Path(path))
    try:
        with _open(result.path) as tar:
            members = tar.getmembers()
            for member in members:
                why = _unsafe(member)
                if why:
                    result.problems.append(f"{member.name}: refused ({why})")
            if result.problems:
                return result
            names = {m.name: m for m in members if m.isfile()}
            if "manifest.json" not in names:
                result.problems.append("manifest.json: missing")
                return result
            result.manifest = json.loads(tar.extractfile(names["manifest.json"]).read())
            if result.manifest.get("format") != FORMAT or result.manifest.get("version") != VERSION:
                result.problems.append(f"manifest.json: not a version {VERSION} {FORMAT}")
                return result
            expected = result.manifest.get("members", {})
            for name, facts in sorted(expected.items()):
                if name not in names:
                    result.problems.append(f"{name}: missing from the archive")
                    continue
                data = tar.extractfile(names[name]).read()
                if len(data) != facts["size"] or hashlib.sha256(data).hexdigest() != facts["sha256"]:
                    result.problems.append(f"{name}: checksum mismatch")
            for name in sorted(set(names) - set(expected) - {"manifest.json"}):
                result.problems.append(f"{name}: not in the manifest")
    except (ArchiveError, tarfile.TarError, OSError, EOFError, ValueError, KeyError) as exc:
        result.problems.append(str(exc))
    return result


def verify_and_record(archive: Archive, *, actor: Actor) -> Verification:
    with audited(Action.VERIFY_ARCHIVE, actor=actor, target=archive.name) as entry:
        result = verify_archive(settings.ARCHIVES_DIR / archive.file_name)
        Archive.objects.filter(pk=archive.pk).update(verified_at=timezone.now(), verify_ok=result.ok)
        entry.detail = {"ok": result.ok, "problems": result.problems}
    return result


def read_members(path: Path) -> dict[str, bytes]:
    """Every file member's bytes, read in memory: nothing is ever extracted by its path."""
    with _open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


AUTO_PREFIX = "auto-"


def scheduled_archive(*, keep: int) -> Archive:
    """The daily beat job: write an archive, then delete the automatic ones beyond the newest ``keep``."""
    archive = create_archive(f"{AUTO_PREFIX}{timezone.now():%Y%m%d-%H%M%S-%f}"[:-3], actor="system:beat")
    for old in Archive.objects.filter(name__startswith=AUTO_PREFIX).order_by("-created_at", "-id")[keep:]:
        with audited(Action.PRUNE_ARCHIVE, actor="system:beat", target=old.name, parameters={"keep": keep}):
            (settings.ARCHIVES_DIR / old.file_name).unlink(missing_ok=True)
            old.delete()
    return archive
