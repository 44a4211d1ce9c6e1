"""Sign-In with Ethereum (EIP-4361): a strict reader of the message, and its verification.

The message has an exact line layout:

    [scheme "://"] domain " wants you to sign in with your Ethereum account:"
    address (EIP-55)
    (empty line)
    [statement, then an empty line]      (without a statement: one more empty line)
    "URI: " uri
    "Version: 1"
    "Chain ID: " digits
    "Nonce: " at least 8 letters and digits
    "Issued At: " RFC 3339 time
    ["Expiration Time: " RFC 3339 time]
    ["Not Before: " RFC 3339 time]
    ["Request ID: " text]
    ["Resources:" then one "- " uri line each]

Each part is read as the EIP-4361 ABNF has it (the domain an RFC 3986 authority, the
statement reserved and unreserved characters and spaces, URIs, a Request ID of path
characters, RFC 3339 times), and render_message writes a message back as the very text it
was read from. It is tested against the messages npm `siwe` 3 and viem write. The PyPI
`siwe` package pins web3 < 8, so this is our own: small, and refusing anything else. The
signature is an EIP-191 personal_sign of the message's UTF-8 text, recovered with
eth_account.
"""

import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext as _
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

from kibo.errors import DomainError

HEADER = " wants you to sign in with your Ethereum account:"
SIGNATURE_RE = re.compile(r"0x[0-9a-fA-F]{130}")
NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")
# RFC 3986's character classes, as the EIP-4361 ABNF uses them.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})+"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@"
DOMAIN_RE = re.compile(rf"(?:{_USERINFO})?(?:\[[0-9A-Fa-f:.]+\]|{_REG_NAME})(?::[0-9]*)?")
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
URI_RE = re.compile(rf"[A-Za-z][A-Za-z0-9+.\-]*:(?:[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS}]|{_PCT})*")
STATEMENT_RE = re.compile(rf"[{_UNRESERVED}:/?#\[\]@{_SUB_DELIMS} ]+")
REQUEST_ID_RE = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})*")
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
MAX_MESSAGE_LENGTH = 4000
CLOCK_SKEW = timedelta(seconds=60)


class SiweRejected(DomainError):
    """A sign-in that cannot be accepted; `status_code` is 400 (malformed) or 401."""

    def __init__(self, message: str, *, status_code: int = 401):
        super().__init__(message)
        self.status_code = status_code


def _malformed(what: str) -> SiweRejected:
    return SiweRejected(
        _("The sign-in message is not valid (%(what)s).") % {"what": what}, status_code=400
    )


@dataclass(frozen=True)
class SiweMessage:
    scheme: str | None
    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    # The times as written (RFC 3339 allows several spellings of one moment), so that
    # render_message writes back the text that was signed.
    written_times: tuple[str, str | None, str | None] = ("", None, None)


def _time(value: str, field: str) -> datetime:
    if not RFC3339_RE.fullmatch(value):
        raise _malformed(field)
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _malformed(field) from None


def _uri(value: str, field: str) -> str:
    if not URI_RE.fullmatch(value):
        raise _malformed(field)
    return value


def parse_message(text: str) -> SiweMessage:
    """Read an EIP-4361 message; raises SiweRejected (400) for anything else."""
    if not isinstance(text, str) or not text or len(text) > MAX_MESSAGE_LENGTH:
        raise _malformed("empty or too long")
    if any(not ch.isprintable() and ch != "\n" for ch in text):
        raise _malformed("unexpected characters")
    lines = text.split("\n")

    first = lines[0]
    if not first.endswith(HEADER):
        raise _malformed("first line")
    origin = first[: -len(HEADER)]
    scheme, _sep, domain = origin.rpartition("://")
    if (scheme and not SCHEME_RE.fullmatch(scheme)) or not DOMAIN_RE.fullmatch(domain):
        raise _malformed("domain")

    if len(lines) < 9:  # the shortest: no statement, no optional field
        raise _malformed("too few lines")
    address = lines[1]
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address) or not is_checksum_address(address):
        raise _malformed("address")
    if lines[2] != "":
        raise _malformed("line 3")
    if lines[3] == "":
        statement, rest = None, lines[4:]
    else:
        statement = lines[3]
        if lines[4] != "" or not STATEMENT_RE.fullmatch(statement):
            raise _malformed("statement")
        rest = lines[5:]

    fields = deque(rest)

    def field(label: str, *, optional: bool = False) -> str | None:
        if fields and fields[0].startswith(label + ": "):
            return fields.popleft()[len(label) + 2 :]
        if optional:
            return None
        raise _malformed(label)

    uri = _uri(field("URI") or "", "URI")
    version = field("Version")
    if version != "1":
        raise _malformed("Version")
    chain_id_text = field("Chain ID")
    if not re.fullmatch(r"[0-9]{1,18}", chain_id_text):
        raise _malformed("Chain ID")
    nonce = field("Nonce")
    if not NONCE_RE.fullmatch(nonce):
        raise _malformed("Nonce")
    issued_text = field("Issued At") or ""
    issued_at = _time(issued_text, "Issued At")
    expiration = field("Expiration Time", optional=True)
    not_before = field("Not Before", optional=True)
    request_id = field("Request ID", optional=True)
    if request_id is not None and not REQUEST_ID_RE.fullmatch(request_id):
        raise _malformed("Request ID")
    resources: list[str] = []
    if fields and fields[0] == "Resources:":
        fields.popleft()
        while fields:
            resource = fields.popleft()
            if not resource.startswith("- "):
                raise _malformed("Resources")
            resources.append(_uri(resource[2:], "Resources"))
    if fields:
        raise _malformed("an unexpected line")

    return SiweMessage(
        scheme=scheme or None,
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_id_text),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=_time(expiration, "Expiration Time") if expiration else None,
        not_before=_time(not_before, "Not Before") if not_before else None,
        request_id=request_id,
        resources=tuple(resources),
        written_times=(issued_text, expiration, not_before),
    )


def render_message(message: SiweMessage) -> str:
    """The message's text, laid out as EIP-4361 writes it: for a parsed message, exactly
    the text it was read from."""
    issued, expiration, not_before = message.written_times
    origin = f"{message.scheme}://{message.domain}" if message.scheme else message.domain
    lines = [f"{origin}{HEADER}", message.address, ""]
    lines += [message.statement, ""] if message.statement is not None else [""]
    lines += [
        f"URI: {message.uri}",
        f"Version: {message.version}",
        f"Chain ID: {message.chain_id}",
        f"Nonce: {message.nonce}",
        f"Issued At: {issued or _rfc3339(message.issued_at)}",
    ]
    if message.expiration_time is not None:
        lines.append(f"Expiration Time: {expiration or _rfc3339(message.expiration_time)}")
    if message.not_before is not None:
        lines.append(f"Not Before: {not_before or _rfc3339(message.not_before)}")
    if message.request_id is not None:
        lines.append(f"Request ID: {message.request_id}")
    if message.resources:
        lines += ["Resources:", *(f"- {resource}" for resource in message.resources)]
    return "\n".join(lines)


def recover_signer(text: str, signature: str) -> str:
    """The address that signed `text` with personal_sign; raises SiweRejected (400)."""
    if not isinstance(signature, str) or not SIGNATURE_RE.fullmatch(signature):
        raise SiweRejected(_("The signature is not valid."), status_code=400)
    try:
        return Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:  # eth_account raises several types for bytes that are no signature
        raise SiweRejected(_("The signature is not valid."), status_code=400) from None


def signed_by(text: str, signature: str, *, address: str) -> bool:
    """Whether `signature` is `address`'s over `text` (False for anything else)."""
    try:
        return recover_signer(text, signature).lower() == address.lower()
    except SiweRejected:
        return False


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _statement_text(statement: str) -> str:
    """The statement as EIP-4361 allows it: ASCII letters, digits, URI punctuation and
    spaces. A translation's accents are folded ("sesión" is written "sesion"), and any other
    character dropped, so a wallet that checks the grammar still shows a sign-in."""
    folded = unicodedata.normalize("NFKD", statement)
    return "".join(ch for ch in folded if STATEMENT_RE.fullmatch(ch)).strip()


def prepare_message(
    *,
    scheme: str,
    host: str,
    address: str,
    chain_id: int,
    nonce: str,
    statement: str,
    issued_at: datetime,
    lifetime: timedelta,
) -> str:
    """The message for a wallet to sign, laid out as EIP-4361 requires."""
    return "\n".join(
        [
            f"{host}{HEADER}",
            address,
            "",
            _statement_text(statement),
            "",
            f"URI: {scheme}://{host}",
            "Version: 1",
            f"Chain ID: {chain_id}",
            f"Nonce: {nonce}",
            f"Issued At: {_rfc3339(issued_at)}",
            f"Expiration Time: {_rfc3339(issued_at + lifetime)}",
        ]
    )


def verify(
    message: SiweMessage,
    text: str,
    signature: str,
    *,
    scheme: str,
    host: str,
    expected_nonce: str | None,
    chain_ids: set[int],
    now: datetime | None = None,
) -> SiweMessage:
    """Check a sign-in (`message`, parsed from `text`) for this site, `scheme`://`host`."""
    now = now or timezone.now()
    if message.domain != host or (message.scheme and message.scheme != scheme):
        raise SiweRejected(_("This sign-in message was made for another site."))
    uri = urlsplit(message.uri)
    if uri.scheme != scheme or uri.netloc != host:
        raise SiweRejected(_("This sign-in message was made for another site."))
    if expected_nonce is None or message.nonce != expected_nonce:
        raise SiweRejected(_("This sign-in request expired or was already used. Try again."))
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SiweRejected(_("This sign-in message has expired. Try again."))
    if (message.not_before is not None and message.not_before > now) or (
        message.issued_at > now + CLOCK_SKEW
    ):
        raise SiweRejected(_("This sign-in message is not valid yet. Check your clock."))
    if message.chain_id not in chain_ids:
        raise SiweRejected(_("Switch your wallet to a network Kibo accepts, then try again."))
    if recover_signer(text, signature).lower() != message.address.lower():
        raise SiweRejected(_("The signature does not match the address in the message."))
    return message
