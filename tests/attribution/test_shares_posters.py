"""QR codes and posters: the QR code decodes to the link's modules, the CJK font is found on a Debian with
fonts-noto-cjk, and without any CJK font the poster still renders (Pillow's default font, a logged warning)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from siyu.attribution.service import posters


def test_qr_png_and_svg_encode_the_link() -> None:
    import segno

    png = Image.open(io.BytesIO(posters.qr_png("http://shop.example/s/abcdEFGH23", scale=1, border=0)))
    expected = segno.make("http://shop.example/s/abcdEFGH23", error="m")
    assert png.size == expected.symbol_size(scale=1, border=0)
    svg = posters.qr_svg("http://shop.example/s/abcdEFGH23").decode()
    assert svg.startswith("<?xml") and "<svg" in svg


@pytest.mark.skipif(not Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").exists(),
                    reason="fonts-noto-cjk is not installed")
def test_a_cjk_font_is_found() -> None:
    path = posters.cjk_font_path()
    assert path is not None and "CJK" in path


def test_without_a_cjk_font_the_poster_still_renders(monkeypatch, caplog) -> None:
    posters.cjk_font_path.cache_clear()
    posters.font.cache_clear()
    monkeypatch.setattr(posters.shutil, "which", lambda name: None)
    monkeypatch.setattr(posters, "KNOWN_FONTS", ())
    try:
        with caplog.at_level(logging.WARNING, logger=posters.__name__):
            data = posters.poster_png(title="好茶", price_cents=1990, image_url=None, sharer_name="小美",
                                      link="http://shop.example/s/abc", shop_name="示例品牌")
        assert Image.open(io.BytesIO(data)).size == posters.POSTER_SIZE
        assert "no CJK font found" in caplog.text
    finally:
        posters.cjk_font_path.cache_clear()
        posters.font.cache_clear()
