"""Which text encoding a user's file is in, decided once from its first bytes, for every text reader.

Spreadsheets and other tools export UTF-8 (with or without a byte-order mark), UTF-16 (Excel's "Unicode
text", always with a byte-order mark) or Latin-1 / Windows-1252 (older exports, European locales). A file
that is none of them (a binary file, a zip archive such as an ``.xlsx`` workbook saved under a ``.csv``
name) is refused with one message instead of a ``UnicodeDecodeError`` in the middle of parsing.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import os
import zlib
from pathlib import Path

from src.common.errors import InputError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
HEAD_BYTES = 1 << 16


def detect_encoding(head: bytes, where: str) -> str:
    """The encoding of a text whose first bytes are ``head``: ``utf-16`` (a byte-order mark says so),
    ``utf-8-sig`` (valid UTF-8, with or without its mark) or ``latin-1`` (any other text); an
    :class:`InputError` naming ``where`` for a zip archive or binary data."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(ZIP_MAGIC):
        raise InputError(f"{where}: a zip archive (an Excel .xlsx workbook?), not a text table; save it as CSV "
                         "(File > Save As > CSV UTF-8) or tab-separated text and pass that file")
    if b"\x00" in head:
        raise InputError(f"{where}: binary data, not text (a NUL byte in its first {len(head):,} bytes); expected a "
                         "text file (UTF-8, UTF-16 or Latin-1)")
    try:
        head.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 3:  # a character cut at the end of the sample
            return "utf-8-sig"
    return "latin-1"


def file_head(path: str | os.PathLike, size: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """The first ``size`` bytes of ``path``'s text (gunzipped when it starts with the gzip magic bytes), and
    whether it was gzipped. A damaged gzip file raises an :class:`InputError` naming it."""
    with open(path, "rb") as f:
        head = f.read(size)
    if not head.startswith(GZIP_MAGIC):
        return head, False
    try:
        with gzip.open(path, "rb") as f:
            return f.read(size), True
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: a truncated or damaged gzip file ({err}); download or compress it again") from None


def text_encoding(path: str | os.PathLike, where: str | None = None) -> tuple[str, bool]:
    """``(encoding, gzipped)`` of the text file ``path``; logs which encoding when it is not UTF-8."""
    head, gzipped = file_head(path)
    encoding = detect_encoding(head, where or str(path))
    if encoding != "utf-8-sig":
        log.info("%s: read as %s (not UTF-8)", path, "UTF-16" if encoding == "utf-16" else "Latin-1")
    return encoding, gzipped


def read_text(path: str | os.PathLike, where: str | None = None) -> str:
    """The whole text of ``path`` (plain or gzipped), decoded as :func:`text_encoding` decides."""
    encoding, gzipped = text_encoding(path, where)
    try:
        if gzipped:
            with gzip.open(path, "rt", encoding=encoding, newline="") as f:
                return f.read()
        return Path(path).read_text(encoding=encoding)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(f"{where or path}: a truncated or damaged gzip file ({err}); download or compress it again") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{where or path}: not {encoding} text past byte {err.start:,} ({err.reason}); save it as "
                         "UTF-8 text") from None
