"""Kibo's app icons: a white "K" on the header bar's ink, drawn with Pillow, no font needed.

Writes static/icons/ (committed; run again only to change the mark):

    .venv/bin/python -m devtools.icons

- icon-192.png, icon-512.png: the rounded square, transparent corners (manifest, purpose any);
- icon-maskable-512.png: full bleed, the K inside the central safe circle (purpose maskable),
  since Android crops it to its own shape;
- apple-touch-icon.png (180): full bleed and opaque, since iOS rounds the corners itself and
  shows transparency as black;
- badge-96.png: the K alone, white on transparent; Android draws notification badges from
  their alpha channel only.
"""

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
INK = (0x14, 0x21, 0x3D, 255)  # --ink in static/css/kibo.css: the header bar, theme_color
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4  # drawn this much larger, then shrunk: smooth edges without anti-aliasing


def draw_k(draw: ImageDraw.ImageDraw, size: int, height: float) -> None:
    """A geometric K `height` tall (a fraction of `size`), centred."""
    h = size * height
    stroke = h * 0.2
    width = h * 0.72
    left, top = (size - width) / 2, (size - h) / 2
    bottom, right = top + h, left + width
    draw.rectangle((left, top, left + stroke, bottom), fill=WHITE)
    waist = (left + stroke, top + h * 0.56)  # where the arms leave the stem
    draw.polygon(
        [
            waist,
            (right - stroke * 1.1, top),
            (right + stroke * 0.1, top),
            (left + stroke, top + h * 0.76),
        ],
        fill=WHITE,
    )
    draw.polygon(
        [
            (left + stroke + h * 0.12, top + h * 0.47),
            (right + stroke * 0.1, bottom),
            (right - stroke * 1.15, bottom),
            (left + stroke * 1.05, top + h * 0.62),
        ],
        fill=WHITE,
    )


def icon(size: int, *, rounded: bool, background: bool = True, k_height: float = 0.56):
    big = size * SUPERSAMPLE
    picture = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    if background:
        radius = big * 0.22 if rounded else 0
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=radius, fill=INK)
    draw_k(draw, big, k_height)
    return picture.resize((size, size), Image.Resampling.LANCZOS)


def save(picture: Image.Image, name: str, *, opaque: bool = False) -> None:
    if opaque:
        picture = picture.convert("RGB")
    # A handful of colours is all an ink square and a white letter need: a palette keeps
    # each file a few kilobytes.
    palette = picture.quantize(colors=32, method=Image.Quantize.FASTOCTREE)
    palette.save(ICONS / name, optimize=True)


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    save(icon(192, rounded=True), "icon-192.png")
    save(icon(512, rounded=True), "icon-512.png")
    # The safe zone of a maskable icon is the centred circle of 80% of its width.
    save(icon(512, rounded=False, k_height=0.42), "icon-maskable-512.png", opaque=True)
    save(icon(180, rounded=False, k_height=0.5), "apple-touch-icon.png", opaque=True)
    save(icon(96, rounded=False, background=False, k_height=0.78), "badge-96.png")
    for path in sorted(ICONS.glob("*.png")):
        print(f"{path.relative_to(ICONS.parent.parent)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
