"""One plain email address, or a clear refusal.

Recipients and the sender go into the SMTP envelope (`MAIL FROM`, `RCPT TO`) and
into headers. What RFC 5322 allows in a header (display names, comments, quoted
local parts, groups such as `"grp:x@y;@example.org"`, several addresses) is not an
address for the envelope: smtplib would send `RCPT TO:<>` for `a@b@example.org`, or
crash on a group. So newsmon accepts exactly `local@domain`:

- local part: a dot-atom of RFC 5322 atext; non-ASCII letters are allowed (RFC 6531
  internationalised addresses) and need a server that offers SMTPUTF8, which the
  sender checks per message (a server without it is a permanent failure for that
  recipient, not a retry);
- domain: dot-separated LDH labels; a non-ASCII domain is converted to its IDNA
  (punycode) form, which every server accepts.
"""
from __future__ import annotations

import re

__all__ = ["plain_address", "needs_smtputf8"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_LOCAL = 64
MAX_ADDRESS = 254


def plain_address(value: object) -> str:
    """`value` as a plain `local@domain` address (domain in IDNA form); ValueError saying why not."""
    if not isinstance(value, str):
        raise ValueError(f"not an email address: {value!r} (expected text like analyst@example.org)")
    text = value.strip()
    shown = repr(value)
    if not text:
        raise ValueError("an email address is empty")
    if any(c in text for c in "\r\n\t\0") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"not an email address: {shown} contains a control character")
    if ":" in text and ";" in text:
        raise ValueError(f"not an email address: {shown} is a group (name: addresses;); give one plain address")
    if any(c in text for c in '<>(),;:"[]\\ '):
        raise ValueError(f"not an email address: {shown}; give one plain address like analyst@example.org, "
                         "without display name, quotes, comments or a list")
    if text.count("@") != 1:
        raise ValueError(f"not an email address: {shown} has {text.count('@')} '@' signs; "
                         "a plain address has exactly one")
    local, domain = text.split("@")
    if not local or not _LOCAL.fullmatch(local):
        raise ValueError(f"not an email address: {shown}: the part before '@' is empty or malformed "
                         "(dots only between characters)")
    if len(local.encode()) > MAX_LOCAL:
        raise ValueError(f"not an email address: {shown}: the part before '@' is longer than {MAX_LOCAL} bytes")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise ValueError(f"not an email address: {shown}: the domain {domain!r} cannot be written in IDNA") from None
    labels = ascii_domain.rstrip(".").split(".") if ascii_domain else []
    if not labels or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"not an email address: {shown}: the domain {domain!r} is not a host name")
    address = f"{local}@{ascii_domain.rstrip('.')}"
    if len(address.encode()) > MAX_ADDRESS:
        raise ValueError(f"not an email address: {shown} is longer than {MAX_ADDRESS} bytes")
    return address


def needs_smtputf8(address: str) -> bool:
    """Whether the address can only travel through a server that offers SMTPUTF8."""
    return not address.isascii()
