"""Rebuild centaur's embedded default image dataset, data/emoji/, from the npm
package ``emoji-datasource-google``.

Usage::

    cd /tmp && npm pack emoji-datasource-google && mkdir edg \
        && tar xzf emoji-datasource-google-*.tgz -C edg
    python tools/make_emoji_dataset.py /tmp/edg/package [OUT_DIR]

OUT_DIR defaults to data/emoji/ next to this tools/ folder. The script reads
the package's emoji.json, maps emoji subcategories to six classes (CLASSES
below), keeps only base emoji (no skin-tone variants) whose Google image
exists and is 8-bit RGBA (a few source PNGs are grey+alpha or palette),
drops byte-identical images, takes at most PER_CLASS evenly spaced
emoji per class in emoji.json sort_order, and copies the 64x64 PNGs from
img/google/64/ byte for byte to OUT_DIR/<class>/<short_name>.png (an
alias where the short_name is not shell-safe, e.g. +1 -> thumbsup). It also
copies the package's MIT LICENSE (for emoji.json) to LICENSE-emoji-data.
Existing PNGs in the class folders are removed first, so the result depends
only on the package version. Standard library only.
"""

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

PER_CLASS = 64

# class name -> emoji.json subcategories it is built from
CLASSES = {
    "animal": ["animal-mammal", "animal-bird", "animal-marine", "animal-bug",
               "animal-reptile", "animal-amphibian"],
    "body": ["hand-fingers-open", "hand-fingers-partial", "hand-single-finger",
             "hand-fingers-closed", "hands", "hand-prop", "body-parts"],
    "face": ["face-smiling", "face-affection", "face-tongue", "face-hand",
             "face-neutral-skeptical", "face-sleepy", "face-unwell", "face-hat",
             "face-glasses", "face-concerned", "face-negative"],
    "flag": ["country-flag"],
    "food": ["food-fruit", "food-vegetable", "food-prepared", "food-asian",
             "food-sweet"],
    "transport": ["transport-ground", "transport-water", "transport-air"],
}

# emoji in those subcategories that are not vehicles (signs, road, fuel, ...)
EXCLUDE = {
    "station", "busstop", "motorway", "railway_track", "oil_drum", "fuelpump",
    "wheel", "rotating_light", "traffic_light", "vertical_traffic_light",
    "octagonal_sign", "construction", "anchor", "ring_buoy", "parachute", "seat",
}

SKIN_TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")


def file_stem(e):
    """short_name, or the first shell-safe alias (+1 -> thumbsup)."""
    for name in [e["short_name"]] + e.get("short_names", []):
        if re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            return name
    raise ValueError(f"no safe file name for {e['short_name']!r}")


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    pkg = Path(argv[1])
    default_out = Path(__file__).resolve().parents[1] / "data" / "emoji"
    out = Path(argv[2]) if len(argv) == 3 else default_out
    emoji = json.loads((pkg / "emoji.json").read_text(encoding="utf-8"))
    version = json.loads((pkg / "package.json").read_text(encoding="utf-8"))["version"]
    img_dir = pkg / "img" / "google" / "64"

    seen = set()  # sha256 of every image already used, across classes
    for cls, subcats in CLASSES.items():
        cands = []
        for e in sorted(emoji, key=lambda e: e["sort_order"]):
            if (e["subcategory"] not in subcats or not e.get("has_img_google")
                    or e["short_name"] in EXCLUDE
                    or any(t in e["unified"] for t in SKIN_TONES)):
                continue
            src = img_dir / e["image"]
            data = src.read_bytes()
            if data[24:26] != b"\x08\x06":  # IHDR: keep 8-bit RGBA only
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            cands.append((file_stem(e), src))
        n = len(cands)
        k = min(PER_CLASS, n)
        picked = [cands[i * n // k] for i in range(k)]
        dest = out / cls
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.png"):
            old.unlink()
        for name, src in picked:
            shutil.copyfile(src, dest / f"{name}.png")
        print(f"{cls:10s} {k:3d} of {n:3d} candidates")

    shutil.copyfile(pkg / "LICENSE", out / "LICENSE-emoji-data")
    print(f"built {out} from emoji-datasource-google {version}")


if __name__ == "__main__":
    main(sys.argv)
