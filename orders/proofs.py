"""Bank receipts uploaded by allies, and the files either side adds to a dispute: recognised
by content (never by name or declared type), size-limited, too small a picture or a PDF
without a page refused, images re-encoded and PDFs rewritten without their metadata,
stored under an unguessable name."""

import hashlib
import io
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import NameObject

from orders.errors import InvalidOrder
from orders.pictures import NotAPicture, TooManyPixels, opened_picture

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
# What a stored PDF keeps of its catalog: never metadata, nor actions run on opening.
UNSAFE_CATALOG_ENTRIES = ("/Metadata", "/OpenAction", "/AA", "/Names", "/PieceInfo")
# A name that says one kind while the content is another is refused: such a file is a
# mistake at best, and a disguise at worst.
NAMED_AS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pdf": "pdf"}
KIND_NAMES = {"png": "PNG", "jpg": "JPEG", "webp": "WebP", "pdf": "PDF"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "pdf": "application/pdf",
}


@dataclass(frozen=True)
class Receipt:
    content: bytes  # what is stored: a PDF as sent, an image re-encoded without metadata
    extension: str
    sha256: str  # of a PDF's bytes, of a picture's pixels: the same receipt, the same hash

    def storage_name(self, folder: str = "proofs") -> str:
        """A private name nobody can guess from the order or the time."""
        return f"{folder}/{secrets.token_urlsafe(24)}.{self.extension}"


def _reencoded(data: bytes) -> tuple[bytes, str, str]:
    """The picture re-saved upright with nothing but its pixels, its extension, and the
    SHA-256 of its pixels (the same receipt re-saved or with other metadata has the same)."""
    refused = _("The file must be a PNG, JPEG or WebP image, or a PDF.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with opened_picture(
            io.BytesIO(data), formats=IMAGE_FORMATS, max_pixels=settings.KIBO_PROOF_MAX_PIXELS
        ) as image:
            extension = IMAGE_FORMATS[image.format or ""]
            if min(image.size) < settings.KIBO_PROOF_MIN_SIDE:
                raise InvalidOrder(
                    _(
                        "This picture is too small to be a receipt; send a screenshot of the "
                        "whole receipt from your bank's app."
                    )
                )
            upright = ImageOps.exif_transpose(image)  # EXIF orientation, applied then dropped
            if extension == "jpg" and upright.mode not in ("RGB", "L"):
                upright = upright.convert("RGB")
            upright.info = {}  # no EXIF, XMP, comments or text chunks are written back
            out = io.BytesIO()
            options = {"quality": 90} if extension in ("jpg", "webp") else {}
            upright.save(out, format=image.format, **options)
            pixels = hashlib.sha256(
                f"{upright.mode}:{upright.size}:".encode() + upright.tobytes()
            ).hexdigest()
    except TooManyPixels:
        raise InvalidOrder(_("The picture is too large; send a screenshot instead.")) from None
    except (NotAPicture, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidOrder(refused) from None
    return out.getvalue(), extension, pixels


def _without_metadata(data: bytes) -> bytes:
    """The PDF rewritten with its pages and nothing that says who made it, when or with
    what (the document information and XMP metadata), nor anything that runs when it is
    opened. Raises InvalidOrder for a damaged, protected or empty PDF."""
    damaged = _("This PDF is damaged or incomplete.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InvalidOrder(_("This PDF is protected with a password; send it without one."))
        if len(reader.pages) == 0:
            raise InvalidOrder(_("This PDF has no page; send the receipt your bank gave you."))
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None
        for key in UNSAFE_CATALOG_ENTRIES:
            writer.root_object.pop(NameObject(key), None)
        for page in writer.pages:
            for key in ("/Metadata", "/PieceInfo", "/AA"):
                page.pop(NameObject(key), None)
        out = io.BytesIO()
        writer.write(out)
    except PyPdfError:
        raise InvalidOrder(damaged) from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        raise InvalidOrder(damaged) from None  # pypdf's answer to some malformed files
    return out.getvalue()


def _is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def _refuse_misnamed(upload, extension: str) -> None:
    named = NAMED_AS.get((getattr(upload, "name", "") or "").rsplit(".", 1)[-1].lower())
    if named is not None and named != extension:
        raise InvalidOrder(
            _("This file is named .%(named)s but it is a %(kind)s. Upload the original file.")
            % {"named": named, "kind": KIND_NAMES[extension]}
        )


def read_receipt(upload) -> Receipt:
    """Check an uploaded receipt (or evidence file); raises InvalidOrder with the reason
    when it can't be one."""
    if upload.size > settings.KIBO_PROOF_MAX_BYTES:
        limit_mb = settings.KIBO_PROOF_MAX_BYTES // (1024 * 1024)
        raise InvalidOrder(
            _("The file is too large; the limit is %(limit)s MB.") % {"limit": limit_mb}
        )
    if upload.size == 0:
        raise InvalidOrder(_("The file is empty."))
    upload.seek(0)
    data = upload.read()
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"%PDF-"):
        _refuse_misnamed(upload, "pdf")
        if not _is_pdf(data):
            raise InvalidOrder(_("This PDF is damaged or incomplete."))
        content, extension = _without_metadata(data), "pdf"
    else:
        content, extension, digest = _reencoded(data)
        _refuse_misnamed(upload, extension)
    return Receipt(content=content, extension=extension, sha256=digest)
