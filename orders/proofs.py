"""Bank receipts uploaded by allies: checked by content, not by name, and size-limited."""

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from orders.errors import InvalidOrder

IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def proof_extension(upload) -> str:
    """The file extension the upload's content really is; raises InvalidOrder otherwise."""
    if upload.size > settings.KIBO_PROOF_MAX_BYTES:
        limit_mb = settings.KIBO_PROOF_MAX_BYTES // (1024 * 1024)
        raise InvalidOrder(
            _("The receipt is too large; the limit is %(limit)s MB.") % {"limit": limit_mb}
        )
    if upload.size == 0:
        raise InvalidOrder(_("The receipt file is empty."))
    upload.seek(0)
    if upload.read(5) == b"%PDF-":
        upload.seek(0)
        return "pdf"
    upload.seek(0)
    try:
        with Image.open(upload) as image:
            image.verify()
            kind = IMAGE_FORMATS.get(image.format or "")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = None
    upload.seek(0)
    if kind is None:
        raise InvalidOrder(_("The receipt must be a PNG, JPEG or WebP image, or a PDF."))
    return kind
