"""What the end-to-end tests share besides their fixtures (tests/e2e/conftest.py): where
the screenshots go, and the fake camera's QR, as a picture and as a video."""

from pathlib import Path

import segno
from PIL import Image

from kibo.env import BASE_DIR
from tests.factories import shop_qr

ARTIFACTS = BASE_DIR / "artifacts" / "e2e"  # screenshots, git-ignored
# What the fake camera shows: a café's dynamic QR for 35.00 bolivianos.
CAMERA_QR = shop_qr("BOB", amount="35.00", merchant="Cafe del Prado")


def y4m_of(image: Image.Image, path: Path, *, frames: int = 10) -> Path:
    """A short YUV4MPEG2 video of a still picture: grey pixels, no colour."""
    width, height = 640, 480
    canvas = Image.new("L", (width, height), 255)
    image = image.convert("L")
    # The scanner reads a centred square two thirds of the short side: keep the QR inside.
    image.thumbnail((height // 2, height // 2))
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    luma = canvas.tobytes()
    chroma = bytes([128]) * (width * height // 4)
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def qr_image(payload: str) -> Image.Image:
    path = ARTIFACTS / "qr.png"
    segno.make(payload, error="m").save(path, kind="png", scale=10, border=4)
    return Image.open(path)
