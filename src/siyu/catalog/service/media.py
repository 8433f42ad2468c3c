"""Image uploads: the bytes decide the type (Pillow reads them), never the file name."""

from __future__ import annotations

import io
import secrets
import warnings

from PIL import Image
from sqlalchemy.orm import Session

from siyu.catalog.models import MediaFile
from siyu.config import get_settings
from siyu.core.auth import Principal
from siyu.core.errors import AppError, PayloadTooLarge, ValidationFailed

# Pillow format -> (extension, content type)
ALLOWED_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
}


class UnsupportedMedia(AppError):
    status_code = 415
    code = "unsupported_media_type"
    message = "Upload a PNG, JPEG, WebP or GIF image."


def save_upload(session: Session, *, actor: Principal, data: bytes, filename: str = "") -> MediaFile:
    """Store an image under media_dir/<merchant_id>/<random>.<ext> and record it."""
    actor.require("catalog.manage")
    settings = get_settings()
    if len(data) > settings.media_max_bytes:
        raise PayloadTooLarge(details={"max_bytes": settings.media_max_bytes})
    if not data:
        raise ValidationFailed("The file is empty.", code="empty_file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                img.verify()
    except Exception as exc:  # anything Pillow cannot read is not an image we take
        raise UnsupportedMedia() from exc
    if fmt not in ALLOWED_FORMATS:
        raise UnsupportedMedia(details={"format": fmt})
    ext, content_type = ALLOWED_FORMATS[fmt]
    folder = settings.media_dir / str(actor.merchant_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(12)}.{ext}"
    (folder / name).write_bytes(data)
    row = MediaFile(merchant_id=actor.merchant_id, path=f"{actor.merchant_id}/{name}",
                    url=f"/media/{actor.merchant_id}/{name}", content_type=content_type, size_bytes=len(data),
                    width=width, height=height, original_name=(filename or "")[:200], uploaded_by=actor.subject_id)
    session.add(row)
    session.flush()
    return row
