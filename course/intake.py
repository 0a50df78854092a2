"""The collect step of ``course grade``: make each student's folder what nbgrader looks for, never losing what
was handed in.

nbgrader grades ``submitted/<student>/<assignment>/<notebook>.ipynb`` and nothing else: a notebook renamed by
a browser or an LMS (``batchnorm (1).ipynb``, ``batchnorm-Copy1.ipynb``, ``Batchnorm.ipynb``) or delivered in
a zip would score 0 as "no notebook". Before grading, for every student folder:

- **zips** (``*.zip`` at the top of the folder, as some LMSs deliver a submission) are unpacked into the
  folder, safely: no absolute paths or ``..``, no links, no encrypted members, at most ``ZIP_MAX_FILES``
  files and ``ZIP_MAX_MB`` MB unpacked (counted while unpacking, not trusted from the header), nothing that
  would overwrite a file already there; one top folder common to every member is dropped. The zip then moves
  to ``originals/<student>/<assignment>/``. A zip that breaks a rule is not unpacked: it moves to
  ``quarantine/<student>/<assignment>/`` and the reason is noted.
- **renamed notebooks**: when ``<notebook>.ipynb`` is missing and exactly one notebook of the folder (or below
  it) has that name once the download decorations are taken off (case, `` (1)``, ``-Copy1``, ``Copy of``,
  `` - 복사본``, an LMS's ``name_12345_67890_`` prefix), it is graded as ``<notebook>.ipynb``, and a copy of
  the file as handed in is kept in ``originals/<student>/<assignment>/``. Two or more candidates are not
  guessed: the note names them.

What was done is written to ``originals/<student>/<assignment>/intake.json`` (kept across regrades, so the
grade table and the class report show it every time) and printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from course.runner import students

ORIGINALS = "originals"
NOTES_FILE = "intake.json"
ZIP_MAX_MB = float(os.environ.get("COURSE_ZIP_MAX_MB", "200"))
ZIP_MAX_FILES = int(os.environ.get("COURSE_ZIP_MAX_FILES", "1000"))
JUNK = ("__MACOSX/", ".DS_Store", ".ipynb_checkpoints/")
# what browsers, Jupyter and LMSs add to a file's name: " (1)", "-Copy1", "Copy of ", " - 복사본", "kim_123_456_"
DECORATIONS = [re.compile(p, re.IGNORECASE) for p in (r"\s*\(\d+\)$", r"[-_ ]copy\d*$", r"^copy of\s+",
                                                      r"\s*-?\s*복사본(\s*\(\d+\))?$", r"^.*?_\d+_(\d+_)?")]


class Refused(Exception):
    """A zip that is not unpacked; the message says why."""


def undecorated(stem: str) -> str:
    """A notebook's name without what a download or a copy added, in lower case."""
    name, previous = stem.strip(), None
    while name != previous:
        previous = name
        for pattern in DECORATIONS:
            name = pattern.sub("", name).strip()
    return name.casefold()


def notebook_names(course: Path, assignment: str) -> list[str]:
    return sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))


def prepare(course: Path, assignment: str, only: list[str] | None = None) -> dict[str, list[str]]:
    """Unpack zips and give renamed notebooks their name in every student's folder (or ``only`` these).
    Returns {student: notes} of what was done or refused now."""
    course, names, done = Path(course), notebook_names(Path(course), assignment), {}
    for student in only or students(course, assignment):
        folder = course / "submitted" / student / assignment
        if folder.is_symlink() or not folder.is_dir():
            continue  # quarantine_links deals with it
        kept = course / ORIGINALS / student / assignment
        notes = unpack_zips(course, folder, kept, student, assignment) + rename_notebooks(folder, kept, names)
        if notes:
            done[student] = notes
            record = kept / NOTES_FILE
            old = json.loads(record.read_text())["notes"] if record.exists() else []
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"notes": list(dict.fromkeys(old + notes))}, ensure_ascii=False, indent=1))
    for student, notes in done.items():
        print(f"{student}/{assignment}: " + "; ".join(notes), flush=True)
    return done


def notes_of(course: Path, student: str, assignment: str) -> list[str]:
    """What the collect step did to this folder (all runs so far)."""
    record = Path(course) / ORIGINALS / student / assignment / NOTES_FILE
    try:
        return list(json.loads(record.read_text(encoding="utf-8"))["notes"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _plain_file(path: Path) -> bool:
    mode = path.lstat()
    return stat.S_ISREG(mode.st_mode) and mode.st_nlink == 1


def _keep(path: Path, folder: Path, target_root: Path) -> Path:
    """Move ``path`` (inside ``folder``) to the same place under ``target_root``, never over another file."""
    target = target_root / path.relative_to(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists():
        target = target.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    shutil.move(path, target)
    return target


def unpack_zips(course: Path, folder: Path, kept: Path, student: str, assignment: str) -> list[str]:
    notes = []
    for archive in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".zip"):
        if not _plain_file(archive):
            continue  # a link: quarantine_links moves it
        try:
            count = unzip(archive, folder)
        except Refused as why:
            target = _keep(archive, folder, course / "quarantine" / student / assignment)
            notes.append(f"{archive.name} not unpacked ({why}): moved to {target.relative_to(course)}")
            continue
        target = _keep(archive, folder, kept)
        notes.append(f"unpacked {archive.name} ({count} file{'s' if count != 1 else ''}; the zip is in "
                     f"{target.relative_to(course)})")
    return notes


def unzip(archive: Path, folder: Path) -> int:
    """Unpack ``archive`` into ``folder`` if it follows every rule; raise ``Refused`` before writing anything
    otherwise (or remove what was written, if the data turns out larger than its header said)."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir() and not any(j in m.filename for j in JUNK)]
            plan = _plan(members, folder)
            written, total = [], 0
            try:
                for member, target in plan:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    written.append(target)
                    with zipped.open(member) as source, open(target, "xb") as sink:
                        while chunk := source.read(1 << 20):
                            total += len(chunk)
                            if total > ZIP_MAX_MB * 2**20:
                                raise Refused(f"more than {ZIP_MAX_MB:g} MB unpacked")
                            sink.write(chunk)
            except BaseException:
                for path in written:
                    path.unlink(missing_ok=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as error:
        raise Refused(f"not a readable zip: {type(error).__name__}") from None
    return len(plan)


def _plan(members: list[zipfile.ZipInfo], folder: Path) -> list[tuple[zipfile.ZipInfo, Path]]:
    """Where each member goes, after checking every rule."""
    if not members:
        raise Refused("no files in it")
    if len(members) > ZIP_MAX_FILES:
        raise Refused(f"{len(members)} files, more than {ZIP_MAX_FILES}")
    if sum(m.file_size for m in members) > ZIP_MAX_MB * 2**20:
        raise Refused(f"more than {ZIP_MAX_MB:g} MB unpacked")
    paths = []
    for m in members:
        name = PurePosixPath(m.filename.replace("\\", "/"))
        if m.flag_bits & 0x1:
            raise Refused(f"{m.filename} is encrypted")
        if stat.S_IFMT(m.external_attr >> 16) not in (0, stat.S_IFREG):
            raise Refused(f"{m.filename} is a link or a special file")
        if name.is_absolute() or ".." in name.parts or not name.parts or ":" in name.parts[0]:
            raise Refused(f"{m.filename} would land outside the folder")
        paths.append(name.parts)
    tops = {parts[0] for parts in paths}
    if len(tops) == 1 and all(len(parts) > 1 for parts in paths):  # one folder holds everything: drop it
        paths = [parts[1:] for parts in paths]
    plan = [(m, folder.joinpath(*parts)) for m, parts in zip(members, paths)]
    taken = [str(t.relative_to(folder)) for _, t in plan if os.path.lexists(t)]
    if taken:
        raise Refused(f"it would overwrite {', '.join(taken[:3])}, already in the folder")
    if len({t for _, t in plan}) != len(plan):
        raise Refused("two members have the same name")
    return plan


def rename_notebooks(folder: Path, kept: Path, names: list[str]) -> list[str]:
    notes = []
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and _plain_file(p))
    for name in names:
        wanted = folder / f"{name}.ipynb"
        if os.path.lexists(wanted):
            continue
        candidates = [p for p in found if undecorated(p.stem) == name.casefold() and p.suffix == ".ipynb"]
        shown = ", ".join(str(p.relative_to(folder)) for p in candidates)
        if len(candidates) > 1:
            notes.append(f"no {name}.ipynb; {len(candidates)} notebooks could be it ({shown}): not guessed, "
                         f"rename the one to grade to {name}.ipynb and regrade")
        elif candidates:
            [path] = candidates
            copy = kept / path.relative_to(folder)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            path.rename(wanted)
            found.remove(path)
            notes.append(f"graded {shown} as {name}.ipynb (the file as handed in is kept as "
                         f"{copy.relative_to(kept.parents[2])})")
    return notes
