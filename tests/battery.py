"""Machinery of the robustness battery (``tests/test_robustness.py``).

The battery runs every ``mbct-bayes`` subcommand as a user would, feeding each input it reads
every kind of bad file, and checks the promise of the CLI: a case either **works** (a BOM,
Windows line ends, unicode or very long site names, a semicolon CSV) and gives the same result
as the plain file, or it **fails** with exit code 2, exactly one line on stderr, no traceback,
nothing on stdout, and no partial or clobbered output.

To cover a new subcommand, add one :class:`Command` to :data:`COMMANDS`: its argv, the input
files it reads (each a :class:`DataSlot`, :class:`FitSlot` or :class:`SpecSlot`) and where it
writes. Every case for it is generated from that line. A failing case must also say the right
thing: the message each kind of bad input must carry is in the ``*_MESSAGES`` tables (with
per-slot and per-command overrides). A line for a command the parser lacks is a failure.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
CODEBOOK = ROOT / "data" / "codebook_orca_mbct.csv"
SPEC = ROOT / "models" / "bernoulli.toml"

WORKS, FAILS = "works", "fails"
EXIT_BAD_INPUT = 2
SENTINEL = b"an older output that a failed run must leave alone\n"
UNICODE_NAMES = ("Ysbyty Gwynedd – Bangor", "Cwm Taf Morgannwg", "Glasgow ☘")
LONG_NAME_CHARS = 10_000
#: Runs as root ignore directory permissions, so "read-only folder" needs another form there.
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# -- what each kind of bad input should do ----------------------------------------------------

#: Kinds applied to every CSV/Parquet table a command reads, with the default expectation.
DATA_KINDS: dict[str, str] = {
    "empty": FAILS,
    "header_only": FAILS,
    "pipe_delimited": FAILS,  # not one of the sniffed delimiters: must be refused clearly
    "semicolon_delimited": WORKS,  # documented: ; and TAB are sniffed
    "non_utf8": FAILS,
    "bom": WORKS,
    "crlf": WORKS,
    "huge_value": FAILS,  # 1e308 in a bounded numeric column
    "nan": FAILS,
    "inf": FAILS,
    "duplicate_columns": FAILS,
    "long_names": WORKS,  # 10k-character site names
    "unicode_names": WORKS,
    "directory": FAILS,
    "missing": FAILS,
}
#: Kinds applied to a saved fit (.nc) a command reads.
FIT_KINDS: dict[str, str] = {
    "missing": FAILS,
    "directory": FAILS,
    "empty": FAILS,
    "garbage": FAILS,  # random bytes
    "csv_named_nc": FAILS,  # a CSV saved under the fit's name
}
#: Kinds applied to a model spec (TOML) a command reads.
SPEC_KINDS: dict[str, str] = {
    "missing": FAILS,
    "directory": FAILS,
    # An empty spec is valid TOML but almost surely a mistake (a wrong or truncated file):
    # refused rather than silently fitting the defaults.
    "empty": FAILS,
    "non_utf8": FAILS,
    "invalid_toml": FAILS,
    "bom": WORKS,
    "crlf": WORKS,
}
#: Output cases for a command writing one file.
FILE_OUT_KINDS: dict[str, str] = {
    "out_missing_folder": FAILS,
    "out_unwritable": FAILS,  # read-only folder (or, as root, a path under a file)
    "out_is_directory": FAILS,
    "out_exists_replaced": WORKS,  # success replaces an old file atomically
    "out_exists_kept": FAILS,  # failure leaves an old file's bytes alone
}
#: Output cases for a command writing into a folder (created if missing).
DIR_OUT_KINDS: dict[str, str] = {
    "out_missing_folder": WORKS,  # created, with its parents
    "out_unwritable": FAILS,
    "out_is_file": FAILS,
    "out_exists_replaced": WORKS,
    "out_exists_kept": FAILS,
}


# -- what each failure must say -----------------------------------------------------------------
# Regular expressions searched in the one stderr line: a distinctive part of the message that says
# what is wrong (and, where the package says it, how to fix it). ``{file}`` is the input's file
# name and ``{numeric}`` the slot's numeric column (both escaped); slots and commands override.

#: Messages of :data:`DATA_KINDS` for a table read by ``schema.read_table`` and checked against a
#: 1-5 scale (observations, new sites).
DATA_MESSAGES: dict[str, str] = {
    "empty": r"{file}: file is empty \(0 bytes\); it needs a header row and data rows",
    "header_only": r"{file}: has a header but no data rows; add one row per",
    "pipe_delimited": r"one column '[^']*\|[^']*'\.\.\.; looks like '\|'-separated text read as comma-separated",
    "non_utf8": r"{file}: not UTF-8 text \(byte 0xe9 at offset \d+, line 2\); save the file as UTF-8",
    "huge_value": r"column '{numeric}' row 1: value 1e\+308 is outside the scale 1-5; fix the value or set scale",
    "nan": r"column '{numeric}' row 1: missing score; fill it in",
    "inf": r"column '{numeric}' row 1: infinite value; fix the value",
    "duplicate_columns": r"{file}: column name '{numeric}' appears 2 times in the header; rename or remove",
    "directory": r"{file}: is a directory; give the [a-z ]+ file \(CSV or Parquet\) inside it",
    "missing": r"{file}: [a-z ]+ file not found; check the path",
}
FIT_MESSAGES: dict[str, str] = {
    "missing": r"{file}: fit file not found; create one with 'mbct-bayes fit",
    "directory": r"{file}: is a directory, not a fit file",
    "empty": r"{file}: not a readable NetCDF fit file .*; re-create it with 'mbct-bayes fit'",
    "garbage": r"{file}: not a readable NetCDF fit file .*; re-create it with 'mbct-bayes fit'",
    "csv_named_nc": r"{file}: not a readable NetCDF fit file .*; re-create it with 'mbct-bayes fit'",
}
SPEC_MESSAGES: dict[str, str] = {
    "missing": r"{file}: model spec not found; see models/",
    "directory": r"{file}: is a directory, not a TOML model spec",
    "empty": r"{file}: the model spec is empty; state at least family",
    "non_utf8": r"{file}: not UTF-8 text; save the spec as UTF-8",
    "invalid_toml": r"{file}: not valid TOML \(Expected '\]' at the end of a table declaration.*\); compare with models/",
}
#: Output kinds (the ``out_exists_kept`` message is the command's late failure, see ``Command``).
FILE_OUT_MESSAGES: dict[str, str] = {
    "out_missing_folder": r"output folder \S+ does not exist; create it first",
    "out_unwritable": (
        r"output folder \S+a_file\.txt does not exist; create it first"
        if IS_ROOT
        else r"output folder \S+read_only is not writable; choose another --out"
    ),
    "out_is_directory": r"output path is a directory; give a file name",
}
DIR_OUT_MESSAGES: dict[str, str] = {
    "out_unwritable": (
        r"cannot create the output folder, \S+a_file\.txt is a file; choose another --out"
        if IS_ROOT
        else r"output folder \S+read_only is not writable; choose another --out"
    ),
    "out_is_file": r"exists and is a file, not a folder; give --out a folder name",
}


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSlot:
    """A CSV table a command reads.

    Parameters
    ----------
    key
        Name of the slot in the argv builder (``paths[key]``).
    source
        Returns the CSV text of a valid file.
    numeric
        Column whose first value ``huge_value``, ``nan`` and ``inf`` replace.
    names
        Text column (site ids) that ``long_names`` and ``unicode_names`` rename; ``None`` when the
        table has none. Every slot of the command with the same ``names`` column is renamed the
        same way, as a user's files would be.
    expect
        Overrides of :data:`DATA_KINDS` for this slot.
    messages
        Overrides of :data:`DATA_MESSAGES` for this slot (its own checks say other words).
    """

    key: str
    source: Callable[[], str]
    numeric: str
    names: str | None = "site"
    expect: Mapping[str, str] = field(default_factory=dict)
    filename: str = ""
    messages: Mapping[str, str] = field(default_factory=dict)

    def message(self, kind: str) -> str:
        """The expected message of ``kind`` (a regular expression), with the slot filled in."""
        return _fill({**DATA_MESSAGES, **self.messages}[kind], self.file_name(), self.numeric)

    def kinds(self) -> dict[str, str]:
        kinds = {**DATA_KINDS, **self.expect}
        if self.names is None:
            kinds.pop("long_names")
            kinds.pop("unicode_names")
        return kinds

    def file_name(self) -> str:
        return self.filename or f"{self.key}.csv"


@dataclass(frozen=True)
class FitSlot:
    """A saved fit (.nc) a command reads; the battery passes the session's example fit."""

    key: str = "fit"
    #: the session fixture whose saved fit is the valid input
    fixture: str = "example_fit_path"

    def kinds(self) -> dict[str, str]:
        return dict(FIT_KINDS)

    def message(self, kind: str) -> str:
        return _fill(FIT_MESSAGES[kind], self.file_name())

    def file_name(self) -> str:
        return "fit.nc"


@dataclass(frozen=True)
class SpecSlot:
    """A model spec (TOML) a command reads; the valid one is ``models/bernoulli.toml``.

    ``skip`` leaves kinds out (a command that samples need not compile a second model for the
    ``empty`` spec, which ``validate`` already covers).
    """

    key: str = "spec"
    skip: tuple[str, ...] = ()

    def kinds(self) -> dict[str, str]:
        return {k: v for k, v in SPEC_KINDS.items() if k not in self.skip}

    def message(self, kind: str) -> str:
        return _fill(SPEC_MESSAGES[kind], self.file_name())

    def file_name(self) -> str:
        return "spec.toml"


Slot = DataSlot | FitSlot | SpecSlot


@dataclass(frozen=True)
class Command:
    """One subcommand configuration of the battery.

    Parameters
    ----------
    id
        Prefix of the case ids, e.g. ``"power-assurance-draws"``.
    argv
        ``argv(paths, out)`` -> the arguments after ``mbct-bayes``; ``paths`` maps each slot key to
        its file, ``out`` is the output path (``None`` when the command writes nothing).
    inputs
        The files the command reads.
    out
        File (or folder, with ``out_dir``) name the command writes into the output folder.
    out_dir
        ``--out`` is a folder that the command fills.
    results
        Files (relative to ``out``'s folder, or inside it for ``out_dir``) compared with the
        baseline run; by default the output file itself. Stdout is always compared.
    site_table
        Output table (same convention) whose ``site`` column must carry renamed sites exactly.
    fail_args
        Extra arguments that make a command without input files fail inside its handler (for
        ``out_exists_kept``); commands with a :class:`DataSlot` use its ``huge_value`` file.
    samples
        The command fits a model: the session's example fit is made first, so that the model is
        compiled once for the whole session.
    fail_message
        What the command says when ``fail_args`` make it fail (a regular expression).
    """

    id: str
    argv: Callable[[Mapping[str, str], str | None], list[str]]
    inputs: tuple[Slot, ...] = ()
    out: str | None = None
    out_dir: bool = False
    results: tuple[str, ...] | None = None
    site_table: str | None = None
    fail_args: tuple[str, ...] = ()
    samples: bool = False
    fail_message: str = ""

    @property
    def needs_fit(self) -> bool:
        """Reads a fit, or samples (and then shares the session fit's compiled model)."""
        return self.samples or any(isinstance(s, FitSlot) for s in self.inputs)

    def out_kinds(self) -> dict[str, str]:
        if self.out is None:
            return {}
        return dict(DIR_OUT_KINDS if self.out_dir else FILE_OUT_KINDS)

    def result_files(self) -> tuple[str, ...]:
        if self.results is not None:
            return self.results
        return () if self.out is None or self.out_dir else (self.out,)


@dataclass(frozen=True)
class Case:
    command: Command
    kind: str  # "ok", a slot kind, or an output kind
    expect: str
    slot: Slot | None = None

    @property
    def id(self) -> str:
        middle = self.slot.key if self.slot is not None else ""
        return "-".join(p for p in (self.command.id, middle, self.kind) if p)

    @property
    def message(self) -> str | None:
        """What the one stderr line must contain when the case fails (a regular expression)."""
        if self.expect != FAILS:
            return None
        if self.slot is not None:
            return self.slot.message(self.kind)
        if self.kind == "out_exists_kept":  # the late failure: the first table's huge value, or fail_args
            late = next((s for s in self.command.inputs if isinstance(s, DataSlot)), None)
            return late.message("huge_value") if late is not None else self.command.fail_message or None
        return (DIR_OUT_MESSAGES if self.command.out_dir else FILE_OUT_MESSAGES)[self.kind]


def _fill(pattern: str, file: str, numeric: str = "") -> str:
    return pattern.replace("{file}", re.escape(file)).replace("{numeric}", re.escape(numeric))


def cases(commands: tuple[Command, ...]) -> list[Case]:
    """Every case of every command: ``ok``, each kind on each input, each output kind."""
    out: list[Case] = []
    for cmd in commands:
        out.append(Case(cmd, "ok", WORKS))
        for slot in cmd.inputs:
            out += [Case(cmd, kind, expect, slot) for kind, expect in slot.kinds().items()]
        out += [Case(cmd, kind, expect) for kind, expect in cmd.out_kinds().items()]
    return out


def known_bug(case: Case, bugs: Mapping[str, str]) -> str | None:
    """The reason of the first ``bugs`` pattern (fnmatch) matching ``"<case id>:<expect>"``.

    ``"evaluate-*:fails"`` marks only the evaluate cases that should fail.
    """
    key = f"{case.id}:{case.expect}"
    for pattern, reason in bugs.items():
        if fnmatch.fnmatchcase(key, pattern):
            return reason
    return None


# -- valid inputs ------------------------------------------------------------------------------


def _text(path: Path) -> Callable[[], str]:
    return lambda: path.read_text(encoding="utf-8")


def forecasts_csv() -> str:
    rng = np.random.default_rng(7)
    sites = [f"S{i:02d}" for i in range(1, 41)]
    return pd.DataFrame({"site": sites, "p_mean": rng.uniform(0.1, 0.9, 40).round(4)}).to_csv(index=False)


def outcomes_csv() -> str:
    rng = np.random.default_rng(8)
    sites = [f"S{i:02d}" for i in range(1, 41)]
    embedded = rng.integers(0, 2, 40)
    embedded[:2] = (0, 1)  # both classes present
    return pd.DataFrame({"site": sites, "embedded": embedded}).to_csv(index=False)


def draws_csv() -> str:
    rng = np.random.default_rng(9)
    n = 200
    return pd.DataFrame({
        "baseline_logit": rng.normal(-0.5, 0.3, n).round(5),
        "sigma_site": np.abs(rng.normal(0.8, 0.2, n)).round(5),
        "log_odds_ratio": rng.normal(0.6, 0.3, n).round(5),
    }).to_csv(index=False)


observations = _text(EXAMPLE / "observations.csv")
new_sites = _text(EXAMPLE / "new_sites.csv")
panel_sites = _text(EXAMPLE / "panel_sites.csv")
responses = _text(EXAMPLE / "responses.csv")
codebook = _text(CODEBOOK)


# -- making the bad files ----------------------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _csv(rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _set_first(text: str, column: str, value: str) -> str:
    rows = _rows(text)
    rows[1][rows[0].index(column)] = value
    return _csv(rows)


def rename(value: str, kind: str) -> str:
    """The name a site gets in ``long_names``/``unicode_names`` (same value, same name)."""
    if kind == "unicode_names":
        pick = int(hashlib.sha256(value.encode()).hexdigest(), 16) % len(UNICODE_NAMES)
        return f"{UNICODE_NAMES[pick]} {value}"
    return f"{value} " + "Llanfair" * (LONG_NAME_CHARS // 8)


def _rename_column(text: str, column: str, kind: str) -> str:
    rows = _rows(text)
    j = rows[0].index(column)
    for row in rows[1:]:
        row[j] = rename(row[j], kind)
    return _csv(rows)


def bad_data(text: str, kind: str, slot: DataSlot) -> bytes | None:
    """The bytes of ``kind`` made from a valid CSV ``text`` (``None``: the file-system kinds)."""
    if kind in ("directory", "missing"):
        return None
    if kind == "empty":
        return b""
    if kind == "header_only":
        return _csv(_rows(text)[:1]).encode()
    if kind == "pipe_delimited":
        return _csv(_rows(text), "|").encode()
    if kind == "semicolon_delimited":
        return _csv(_rows(text), ";").encode()
    if kind == "non_utf8":
        # a cp1252 export from Excel: "é" is the single byte 0xe9
        if slot.names is not None:
            rows = _rows(text)
            j = rows[0].index(slot.names)
            rows[1][j] = f"Caerffili é {rows[1][j]}"
            return _csv(rows).encode("cp1252")
        rows = _rows(text)
        rows[0].append("note")
        for row in rows[1:]:
            row.append("café")
        return _csv(rows).encode("cp1252")
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if kind == "crlf":
        return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    if kind in ("huge_value", "nan", "inf"):
        value = {"huge_value": "1e308", "nan": "nan", "inf": "inf"}[kind]
        return _set_first(text, slot.numeric, value).encode()
    if kind == "duplicate_columns":
        rows = _rows(text)
        j = rows[0].index(slot.numeric)
        for row in rows:
            row.append(row[j])
        return _csv(rows).encode()
    if kind in ("long_names", "unicode_names"):
        return _rename_column(text, slot.names, kind).encode()
    raise ValueError(f"unknown kind {kind!r}")


def bad_fit(path: Path, kind: str) -> None:
    """Write the ``kind`` of bad fit file at ``path`` (nothing for ``missing``)."""
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "csv_named_nc":
        path.write_text(observations(), encoding="utf-8")


def bad_spec(path: Path, kind: str) -> None:
    """Write the ``kind`` of model spec at ``path`` (nothing for ``missing``)."""
    text = SPEC.read_text(encoding="utf-8")
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "non_utf8":
        path.write_bytes(text.replace('name = "parihs-bernoulli"', 'name = "parihs-café"').encode("cp1252"))
    elif kind == "invalid_toml":
        path.write_text(text.replace("[center]", "[center"), encoding="utf-8")
    elif kind == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    elif kind == "crlf":
        path.write_bytes(text.replace("\n", "\r\n").encode())
    elif kind == "ok":
        path.write_text(text, encoding="utf-8")


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    warnings: list = field(default_factory=list)  # warnings.WarningMessage raised during the run


@dataclass
class Workspace:
    """A case's folders: ``in/`` for inputs, ``out/`` for outputs, and the paths given."""

    root: Path
    paths: dict[str, str]
    out: Path | None
    renamed: dict[str, str] = field(default_factory=dict)  # original site -> new name


def prepare(case: Case, root: Path, fit_path: Path | None) -> tuple[Workspace, list[str]]:
    """Write the case's inputs under ``root`` and return its workspace and argv."""
    cmd = case.command
    inp, out_folder = root / "in", root / "out"
    inp.mkdir()
    out_folder.mkdir()
    paths: dict[str, str] = {}
    renamed: dict[str, str] = {}
    target = case.slot
    # out_exists_kept makes the run fail late: through a value that reading accepts but
    # validation refuses, or through the command's fail_args
    late_fail = case.kind == "out_exists_kept"
    late_slot = next((s for s in cmd.inputs if isinstance(s, DataSlot)), None) if late_fail else None
    for slot in cmd.inputs:
        path = inp / slot.file_name()
        paths[slot.key] = str(path)
        kind = case.kind if slot is target else None
        if isinstance(slot, FitSlot):
            if kind is None:
                paths[slot.key] = str(fit_path)
            else:
                bad_fit(path, kind)
        elif isinstance(slot, SpecSlot):
            bad_spec(path, kind or "ok")
        else:
            text = slot.source()
            if slot is late_slot:
                data = bad_data(text, "huge_value", slot)
            elif kind is not None:
                data = bad_data(text, kind, slot)
            elif case.kind in ("long_names", "unicode_names") and _same_names(slot, target):
                data = bad_data(text, case.kind, slot)
            else:
                data = text.encode()
            if case.kind in ("long_names", "unicode_names") and _same_names(slot, target):
                col = _rows(text)[0].index(slot.names)
                renamed |= {r[col]: rename(r[col], case.kind) for r in _rows(text)[1:]}
            if kind == "directory":
                path.mkdir()
            elif data is not None:
                path.write_bytes(data)

    out = _out_path(case, out_folder)
    argv = cmd.argv(paths, None if out is None else str(out))
    if late_fail and late_slot is None:
        argv += list(cmd.fail_args)
    return Workspace(root, paths, out, renamed), argv


def _same_names(slot: Slot, target: Slot | None) -> bool:
    return (
        isinstance(slot, DataSlot)
        and isinstance(target, DataSlot)
        and slot.names is not None
        and slot.names == target.names
    )


def _out_path(case: Case, folder: Path) -> Path | None:
    cmd, kind = case.command, case.kind
    if cmd.out is None:
        return None
    out = folder / cmd.out
    if kind == "out_missing_folder":
        return folder / "no" / "such" / "folder" / cmd.out
    if kind == "out_unwritable":
        if IS_ROOT:
            (folder / "a_file.txt").write_bytes(b"not a folder\n")
            return folder / "a_file.txt" / cmd.out
        locked = folder / "read_only"
        locked.mkdir()
        locked.chmod(0o555)
        return locked / cmd.out
    if kind == "out_is_directory":
        out.mkdir()
    elif kind == "out_is_file":
        out.write_bytes(SENTINEL)
    elif kind in ("out_exists_replaced", "out_exists_kept"):
        if cmd.out_dir:
            out.mkdir()
            for name in cmd.result_files() or ("old.txt",):
                (out / name).write_bytes(SENTINEL)
        else:
            out.write_bytes(SENTINEL)
    return out


def run_cli(argv: list[str], capsys) -> Run:
    """``mbct-bayes ARGV`` in this process; argparse's exits become return codes."""
    from mbct_bayes.cli.main import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return Run(int(code), out, err)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: relative path -> content hash (or ``<dir>``)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), root)] = "<dir>"
        for name in filenames:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                found[os.path.relpath(full, root)] = hashlib.sha256(fh.read()).hexdigest()
    return found


def unlock(root: Path) -> None:
    """Give back write permission so pytest can remove the case's folder."""
    for dirpath, _, _ in os.walk(root):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)


def results(case: Case, ws: Workspace, run: Run) -> dict[str, str]:
    """What a run produced, with the workspace path taken out: stdout and each result file."""

    def clean(text: str) -> str:
        if ws.out is not None:
            text = text.replace(str(ws.out), "<out>")
        return text.replace(str(ws.root), "<ws>")

    found = {"stdout": clean(run.stdout)}
    for name in case.command.result_files():
        path = result_path(case, ws, name)
        found[name] = clean(path.read_text(encoding="utf-8")) if path.is_file() else "<missing>"
    return found


def result_path(case: Case, ws: Workspace, name: str) -> Path:
    """Where the command wrote its result file ``name``."""
    assert ws.out is not None
    return ws.out / name if case.command.out_dir else ws.out.parent / name
