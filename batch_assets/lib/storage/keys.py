"""Checks that keep a store key inside its store and readable in a listing.

Keys come from vendors, specs and partition names, so they are checked before they become a
path or an S3 key: no way out of the root (``..``, absolute paths), nothing a shell, a log line
or another operating system would read differently (backslashes, control characters, and
invisible characters that change how a name reads: bidi overrides, zero-width marks, line
separators).
"""

from __future__ import annotations

import unicodedata

MAX_KEY_BYTES = 1024  # the S3 limit, applied to both stores so a key works in either
# Unicode categories refused besides control characters (Cc): format characters such as
# U+202E RIGHT-TO-LEFT OVERRIDE or U+200B ZERO WIDTH SPACE (Cf), line and paragraph separators.
INVISIBLE = {"Cf": "invisible formatting character", "Zl": "line separator", "Zp": "paragraph separator"}


class UnsafeKeyError(ValueError):
    """A key or prefix that a store refuses; the message says what is wrong with it."""


def safe_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe '/'-separated relative key, else raise UnsafeKeyError."""
    if not key:
        raise UnsafeKeyError("key is empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise UnsafeKeyError(f"key {key!r} is not valid UTF-8 text") from error
    if size > MAX_KEY_BYTES:
        raise UnsafeKeyError(f"key is {size} bytes long, over the {MAX_KEY_BYTES}-byte limit")
    for char in key:
        category = unicodedata.category(char)
        if category == "Cc":
            raise UnsafeKeyError(f"key {key!r} contains the control character {char!r}")
        if category in INVISIBLE:
            raise UnsafeKeyError(f"key {ascii(key)} contains the {INVISIBLE[category]} U+{ord(char):04X}")
    if "\\" in key:
        raise UnsafeKeyError(f"key {key!r} contains a backslash; use '/' between folders")
    if key.startswith("/"):
        raise UnsafeKeyError(f"key {key!r} is absolute; keys are relative to the store root")
    for segment in key.split("/"):
        if not segment:
            raise UnsafeKeyError(f"key {key!r} has an empty segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise UnsafeKeyError(f"key {key!r} has a {segment!r} segment")
    return key


def safe_prefix(prefix: str) -> str:
    """Like safe_key, but '' (the whole store) and one trailing '/' (a folder) are allowed."""
    if prefix:
        safe_key(prefix.removesuffix("/") or prefix)
    return prefix
