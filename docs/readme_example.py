"""Render the README's example: the cat in the style of The Starry Night, 384 px.

    .venv/bin/python docs/readme_example.py

Writes docs/images/example-strip.jpg (content | style | result) and prints the
render's stats, which the README quotes.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from nst_engine import RenderSettings
from nst_engine.engine import Engine

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "manifests" / "images"
HEIGHT = 256  # of each panel in the strip


def panel(image: Image.Image) -> Image.Image:
    width = round(image.width * HEIGHT / image.height)
    return image.convert("RGB").resize((width, HEIGHT), Image.LANCZOS)


def main() -> None:
    content = Image.open(IMAGES / "content" / "chelsea.jpg")
    style = Image.open(IMAGES / "style" / "starry_night.jpg")
    settings = RenderSettings(size=384, iterations=300)
    result = Engine("cpu", cache_dir=None).render(content, [style], settings)
    panels = [panel(content), panel(style), panel(result.image)]
    gap = 8
    strip = Image.new("RGB", (sum(p.width for p in panels) + gap * 2, HEIGHT), "white")
    x = 0
    for p in panels:
        strip.paste(p, (x, 0))
        x += p.width + gap
    (HERE / "images").mkdir(exist_ok=True)
    strip.save(HERE / "images" / "example-strip.jpg", quality=90)
    result.image.save(HERE / "images" / "example-chelsea-starry.png")
    print(json.dumps(result.stats.to_dict(), indent=2))


if __name__ == "__main__":
    main()
