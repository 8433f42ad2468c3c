"""attribution: QR codes (segno, PNG and SVG) and share posters (Pillow): the target's image, its title and
price, who shares it, and the QR code of the share link. Chinese text needs a CJK font: Debian's
fonts-noto-cjk is looked up through fontconfig and known paths; without one, Pillow's default font is used
and a warning logged."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from siyu.config import get_settings
from siyu.core.i18n import gettext as _
from siyu.core.money import format_cents

log = logging.getLogger(__name__)

POSTER_SIZE = (750, 1200)
IMAGE_BOX = (750, 750)
QR_SIZE = 220
KNOWN_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)


def qr_png(data: str, *, scale: int = 8, border: int = 2) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


def qr_svg(data: str, *, scale: int = 8, border: int = 2) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="svg", scale=scale, border=border, xmldecl=True)
    return buffer.getvalue()


def qr_svg_inline(data: str, *, scale: int = 4) -> str:
    """An <svg> element to put in a page (segno writes it; no user markup goes into it)."""
    import segno

    return segno.make(data, error="m").svg_inline(scale=scale)


@lru_cache
def cjk_font_path() -> str | None:
    """A font file that has Chinese glyphs, or None."""
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK SC:lang=zh-cn"], capture_output=True,
                                   text=True, timeout=5, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found and Path(found).is_file() and ("CJK" in found or "wqy" in found.lower()):
            return found
    for path in KNOWN_FONTS:
        if Path(path).is_file():
            return path
    log.warning("no CJK font found (install fonts-noto-cjk): share posters use Pillow's default font")
    return None


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = cjk_font_path()
    if path:
        try:
            return ImageFont.truetype(path, size=size, index=0)
        except OSError:
            log.warning("cannot open font %s: share posters use Pillow's default font", path)
    return ImageFont.load_default(size=size)


def _media_image(url: str | None) -> Image.Image | None:
    """An uploaded image by its /media/ URL (only files under the media folder, never a remote fetch)."""
    if not url or not url.startswith("/media/"):
        return None
    root = get_settings().media_dir.resolve()
    path = (root / url[len("/media/"):]).resolve()
    if root not in path.parents or not path.is_file():
        return None
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except Exception:  # a broken upload must not break the poster
        log.warning("cannot read poster image %s", path)
        return None


def _cover(img: Image.Image, box: tuple[int, int]) -> Image.Image:
    w, h = img.size
    scale = max(box[0] / w, box[1] / h)
    resized = img.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    left, top = (resized.width - box[0]) // 2, (resized.height - box[1]) // 2
    return resized.crop((left, top, left + box[0], top + box[1]))


def _wrap(draw: ImageDraw.ImageDraw, text: str, fnt: object, width: int, lines: int) -> list[str]:
    out, current = [], ""
    for ch in text:
        trial = current + ch
        if draw.textlength(trial, font=fnt) <= width:  # type: ignore[arg-type]
            current = trial
            continue
        out.append(current)
        current = ch
        if len(out) == lines:
            break
    if len(out) < lines and current:
        out.append(current)
    if len(out) == lines and "".join(out) != text:
        out[-1] = out[-1][:-1] + "…"
    return out


def poster_png(*, title: str, subtitle: str = "", price_cents: int | None, image_url: str | None, sharer_name: str,
               link: str, shop_name: str) -> bytes:
    """The share poster: image on top (or a coloured panel with the shop's name), title, price, the sharer's
    line, and the QR code of `link` at the bottom right."""
    poster = Image.new("RGB", POSTER_SIZE, "white")
    draw = ImageDraw.Draw(poster)
    picture = _media_image(image_url)
    if picture is not None:
        poster.paste(_cover(picture, IMAGE_BOX), (0, 0))
    else:
        draw.rectangle((0, 0, IMAGE_BOX[0], IMAGE_BOX[1]), fill=(250, 236, 230))
        big = font(64)
        for i, line in enumerate(_wrap(draw, title or shop_name, big, 620, 3)):
            draw.text((65, 260 + i * 90), line, font=big, fill=(196, 60, 40))
    y = IMAGE_BOX[1] + 30
    title_font = font(38)
    for line in _wrap(draw, title, title_font, 690, 2):
        draw.text((30, y), line, font=title_font, fill=(34, 34, 34))
        y += 52
    if subtitle:
        for line in _wrap(draw, subtitle, font(26), 430, 1):
            draw.text((30, y + 4), line, font=font(26), fill=(120, 120, 120))
        y += 40
    if price_cents is not None:
        draw.text((30, y + 14), format_cents(price_cents), font=font(52), fill=(220, 50, 30))
    qr = Image.open(io.BytesIO(qr_png(link, scale=6, border=1))).convert("RGB").resize((QR_SIZE, QR_SIZE),
                                                                                        Image.NEAREST)
    poster.paste(qr, (POSTER_SIZE[0] - QR_SIZE - 30, POSTER_SIZE[1] - QR_SIZE - 40))
    small = font(26)
    bottom = POSTER_SIZE[1] - 150
    if sharer_name:
        for line in _wrap(draw, _("{name} recommends this to you", name=sharer_name), small, 420, 2):
            draw.text((30, bottom), line, font=small, fill=(60, 60, 60))
            bottom += 36
    draw.text((30, POSTER_SIZE[1] - 70), _("Scan the QR code to open"), font=font(24), fill=(140, 140, 140))
    buffer = io.BytesIO()
    poster.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
