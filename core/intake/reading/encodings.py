"""Which text encoding a CSV file is in, and the files that are not CSV at all.

:func:`detect_encoding` looks at the file's prefix: a workbook, a PDF or an
archive is rejected with what to do instead; otherwise UTF-16 (by its BOM),
UTF-8 (with or without a BOM) or Windows-1252.
"""

from __future__ import annotations

import codecs

from core.errors import FileRejected

SAVE_AS_CSV = "in Excel choose File › Save As › CSV UTF-8"
LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}
OTHER_FORMATS = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        f"the file looks like a legacy Excel workbook (.xls), not a CSV: {SAVE_AS_CSV}",
    ),
    (
        b"%PDF-",
        "the file is a PDF document, not a CSV: export the list as CSV UTF-8 from the system it came from",
    ),
    (b"\x1f\x8b", "the file is gzip-compressed: decompress it and upload the CSV inside"),
)


def detect_encoding(prefix: bytes, *, complete: bool) -> str:
    if prefix.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"xl/" in prefix:
            raise FileRejected(f"the file looks like an Excel workbook (.xlsx), not a CSV: {SAVE_AS_CSV}")
        raise FileRejected(
            f"the file is a ZIP archive, not a CSV: extract the CSV, or if it is a workbook, {SAVE_AS_CSV}"
        )
    for magic, message in OTHER_FORMATS:
        if prefix.startswith(magic):
            raise FileRejected(message)
    if prefix.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in prefix:
        raise FileRejected("the file contains NUL bytes; is it a binary file? Save it as CSV UTF-8")
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # Incremental, so a character cut in two by the end of the prefix is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        prefix.decode("cp1252")
    except UnicodeDecodeError:
        raise FileRejected(
            "the file's text encoding is neither UTF-8 nor Windows-1252: "
            f"save it as CSV UTF-8 ({SAVE_AS_CSV})"
        ) from None
    return "cp1252"


def is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def too_big(max_bytes: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if max_bytes >= scale:
            return f"the file is larger than {max_bytes / scale:.3g} {unit}: split it into smaller files"
    return f"the file is larger than {max_bytes} bytes: split it into smaller files"
