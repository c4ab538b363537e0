"""The review at a terminal: the report the ``bulk-import review`` command prints.

The report is drawn from the review JSON alone (:func:`core.intake.review.review_file`),
so the terminal and ``--json`` never disagree: the file's format, how the columns
matched, errors and warnings grouped by kind (a few rows each), what the import
would do (the first people it would update, with what changes for each), and
last, whether the file can be imported and the command to do it.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from core.columns import COLUMNS_BY_NAME
from core.intake.mapping import IGNORE
from core.vocabulary import DEFAULT_BLANK_CELLS, DEFAULT_MATCH_KEY, Mode

SHOWN_PER_GROUP = 20
SHOWN_PEOPLE = 20
SHOWN_CHANGED_PEOPLE = 10
_ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16", "cp1252": "Windows-1252"}
_WORKBOOKS = {
    "xlsx": "Excel workbook",
    "xlsm": "Excel workbook with macros (ignored)",
    "ods": "OpenDocument spreadsheet",
    "xls": "Excel 97-2003 workbook",
}
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Short titles for the kinds of problem, found by a phrase of their message;
# cosmetic only: a kind matching none is shown under its column alone.
_TITLES = (
    ("is not a valid e-mail address", "not a valid e-mail address"),
    ("each person may appear only once", "already on an earlier row"),
    ("cannot take it", "an address someone else keeps"),
    ("an employee id never changes", "another employee id than the person's"),
    ("so it cannot be", "someone else's employee id"),
    ("whose employee id is not", "previous address of someone with another employee id"),
    ("people are matched by employee id", "employee id required"),
    ("would be added as", "likely rename (add their previous address)"),
    ("is required but blank", "required but blank"),
    ("is not a role", "not a role"),
    ("is not a language", "not a language"),
    ("characters long", "too long"),
    ("line break", "line break in a cell"),
    ("control character", "control character in a cell"),
    ("did you mean", "likely typo in the e-mail domain"),
    ("is the team", "team written another way"),
    ("is the existing team", "existing team written another way"),
    ("more than one Manager row", "more than one Manager for a team"),
    ("already has a manager", "team keeps its manager"),
    ("spreadsheet formula", "looks like a spreadsheet formula"),
)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _heading(text: str, colour: str) -> str:
    return click.style(text, fg=colour, bold=True)


def _header(field: str) -> str:
    return COLUMNS_BY_NAME[field].header


def _file_lines(review: dict[str, Any]) -> list[str]:
    info = review["file"]
    if info.get("sheet") is not None:
        kind = _WORKBOOKS.get(info["format"], info["format"])
        lines = [f"File      {kind}, sheet {info['sheet']!r}, header on row {info['header_row']}"]
        if info["other_sheets"]:
            lines.append("          other sheets, not read: " + ", ".join(info["other_sheets"]))
    else:
        encoding = _ENCODINGS.get(info["encoding"], info["encoding"])
        delimiter = _DELIMITERS.get(info["delimiter"], repr(info["delimiter"]))
        lines = [f"File      {encoding}, {delimiter}-separated, header on row {info['header_row']}"]
    if info["preamble"]:
        lines.append("          lines above the header, ignored: " + " | ".join(info["preamble"]))
    return lines


def _choice_text(header: str, field: str | None) -> str:
    return f"{header} → {_header(field)}" if field is not None else f"{header} ignored"


def _choice_lines(columns: dict[str, Any]) -> list[str]:
    chosen: dict[str, str | None] = columns.get("chosen", {})
    remembered = set(columns.get("remembered", []))
    lines = []
    yours = [_choice_text(h, f) for h, f in chosen.items() if h not in remembered]
    if yours:
        lines.append("          your choices: " + ", ".join(yours))
    kept = [_choice_text(h, f) for h, f in chosen.items() if h in remembered]
    if kept:
        lines.append("          remembered choices for this tenant: " + ", ".join(kept))
    if columns.get("ignored"):
        lines.append("          columns ignored: " + ", ".join(columns["ignored"]))
    return lines


def _column_lines(review: dict[str, Any]) -> list[str]:
    columns = review["columns"]
    matched = ", ".join(f"{header} → {_header(field)}" for header, field in columns["matched"].items())
    lines = [f"Columns   {matched or 'none matched'}", *_choice_lines(columns)]
    if columns["unmatched"]:
        lines.append(
            "          columns without matches (ignored; map one with --map 'HEADER=FIELD'): "
            + ", ".join(columns["unmatched"])
        )
    if columns["duplicates"]:
        lines.append("          repeated columns (the first is used): " + ", ".join(columns["duplicates"]))
    for field in columns["missing_required"]:
        hint = columns["hints"].get(field)
        text = f"          missing required column: {_header(field)}"
        lines.append(click.style(text + (f" (is '{hint}' meant to be it?)" if hint else ""), fg="red"))
    return lines


def _row_lines(review: dict[str, Any]) -> list[str]:
    rows = review["rows"]
    text = (
        f"Rows      {_plural(rows['total'], 'row')}: {rows['valid']:,} valid, {rows['invalid']:,} with errors"
    )
    if rows["blank"]:
        text += f" ({_plural(rows['blank'], 'blank row')} skipped)"
    return [text]


def _problem_lines(review: dict[str, Any], kind: str) -> list[str]:
    groups = review["summary"][kind]
    if not groups:
        return []
    total = sum(group["count"] for group in groups)
    if kind == "errors":
        rows = _plural(review["rows"]["invalid"], "row")
        lines = [
            "",
            _heading(f"Errors: {_plural(total, 'problem')} on {rows}, which the import leaves out", "red"),
        ]
    else:
        lines = ["", _heading(f"Warnings: {total:,} (they do not stop the import; check them)", "yellow")]
    for group in groups:
        title = next((title for phrase, title in _TITLES if phrase in group["kind"]), "")
        label = f"{group['column']} — {title}" if title else group["column"]
        lines.append(f"  {label} ({group['count']:,})")
        lines += [f"    row {p['row']}: {p['message']}" for p in group["examples"][:SHOWN_PER_GROUP]]
        if group["count"] > SHOWN_PER_GROUP:
            lines.append(f"    … and {group['count'] - SHOWN_PER_GROUP:,} more like these — use --json")
    return lines


def describe_changes(changes: list[dict[str, Any]]) -> str:
    """One person's changes on one line: ``Job title: Analyst → Lead; Manager: — → bob@x.com``."""
    return "; ".join(f"{c['header']}: {_value(c['old'])} → {_value(c['new'])}" for c in changes)


def _value(value: Any) -> str:
    return "—" if value is None else str(value)


def _change_lines(review: dict[str, Any]) -> list[str]:
    changes = review.get("changes")
    if not changes or not changes["rows"]:
        return []
    shown = changes["rows"][:SHOWN_CHANGED_PEOPLE]
    width = max(len(r["email"]) for r in shown)
    lines = [f"  updating {r['email']:<{width}}  {describe_changes(r['changes'])}" for r in shown]
    more = changes["total"] - changes["offset"] - len(shown)
    if more > 0:
        lines.append(f"  … and {more:,} more to update — use --rows, or --json --all-changes")
    return lines


def _preview_lines(review: dict[str, Any]) -> list[str]:
    preview, mode = review["preview"], review["mode"]
    counts = [
        f"{preview['create']:,} to create",
        f"{preview['update']:,} to update",
        f"{preview['unchanged']:,} unchanged",
    ]
    if mode == Mode.ADD_ONLY:
        counts.append(f"{preview['skip']:,} skipped (already there)")
    if mode == Mode.SYNC:
        counts.append(f"{preview['deactivate']:,} to deactivate")
    options = (
        mode
        if review.get("blank_cells", DEFAULT_BLANK_CELLS) == DEFAULT_BLANK_CELLS
        else f"{mode}, blank cells kept"
    )
    if review.get("match_by", DEFAULT_MATCH_KEY) != DEFAULT_MATCH_KEY:
        options += ", people matched by employee id"
    lines = ["", _heading(f"The import ({options}) would", "blue"), "  " + ", ".join(counts)]
    if changed := preview.get("email_changes"):
        addresses = "e-mail address" if changed == 1 else "e-mail addresses"
        lines.append(
            f"  change {changed:,} {addresses} (the same people, renamed:"
            " their history, teams and managers stay theirs)"
        )
    lines += _change_lines(review)
    if mode == Mode.SYNC:
        people = preview["deactivate_people"][:SHOWN_PEOPLE]
        if people:
            more = preview["deactivate"] - len(people)
            reason = f" ({preview['deactivate_reason']})" if preview.get("deactivate_reason") else ""
            lines.append(
                "  deactivating " + ", ".join(people) + (f" and {more:,} more" if more else "") + reason
            )
        if preview["admins_kept"]:
            admins = preview["admins_kept"]
            verb = "stays" if admins == 1 else "stay"
            lines.append(
                f"  {_plural(admins, 'admin')} missing from the file {verb} active (never deactivated)"
            )
        if preview["would_block"]:
            limit = int(preview["max_share"] * preview["active"])
            lines.append(
                click.style(
                    f"  the sweep would deactivate {preview['deactivate']:,} of {preview['active']:,} active "
                    f"people, more than the {preview['max_share']:.0%} allowed ({limit:,}): the import "
                    "would stop before deactivating anyone unless run with --allow-mass-deactivation",
                    fg="yellow",
                )
            )
    return lines


def _row_detail_lines(review: dict[str, Any]) -> list[str]:
    if "rows_preview" not in review:
        return []
    lines = ["", _heading("Row by row", "blue")]
    lines += [
        f"  row {r['row']}: {r['email'] or '(no e-mail)'} → {r['action']}"
        + (f" ({describe_changes(r['changes'])})" if r.get("changes") else "")
        for r in review["rows_preview"]
    ]
    return lines


def _verdict(review: dict[str, Any], file: str) -> str:
    if not review["importable"]:
        return _heading(f"✗ This file cannot be imported: {review['error']}", "red")
    words = ["bulk-import", "run", file, "--tenant", review["tenant"], "--mode", review["mode"]]
    if review.get("blank_cells", DEFAULT_BLANK_CELLS) != DEFAULT_BLANK_CELLS:
        words += ["--blank-cells", review["blank_cells"]]
    if review.get("match_by", DEFAULT_MATCH_KEY) != DEFAULT_MATCH_KEY:
        words += ["--match-by", review["match_by"]]
    # The choices given to the review: the import remembers them (remembered ones apply anyway).
    remembered = set(review["columns"].get("remembered", []))
    for header, field in review["columns"].get("chosen", {}).items():
        if header not in remembered:
            words += ["--map", f"{header}={field or IGNORE}"]
    command = shlex.join(words)
    invalid = review["rows"]["invalid"]
    left_out = f" ({_plural(invalid, 'row')} with errors will be left out)" if invalid else ""
    return _heading(f"✓ This file can be imported{left_out}: {command}", "green")


def render_review(review: dict[str, Any], file: str) -> str:
    """The review of ``file`` as text (with colour, which click strips off a non-terminal)."""
    if "file" not in review:  # the file could not be read at all
        return _heading(f"✗ This file cannot be imported: {review['error']}", "red")
    lines = [_heading(f"Review of {file} for tenant {review['tenant']}", "blue"), ""]
    lines += _file_lines(review) + _column_lines(review) + _row_lines(review)
    lines += _problem_lines(review, "errors") + _problem_lines(review, "warnings")
    if review["importable"]:
        lines += _preview_lines(review) + _row_detail_lines(review)
    lines += ["", _verdict(review, file)]
    return "\n".join(lines)
