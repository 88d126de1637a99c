"""What an analysed metaphase (:mod:`amfl.metaphase`) leaves on disk and shows: instance
maps, a numbered overlay, a gallery of the chromosomes turned upright, CSV rows and a
one-line summary. Shared by the command line (``python -m amfl.predict --metaphase``) and
the app.

Files for an image ``x.tif`` (:func:`save_metaphase_outputs`, each written atomically):

- ``x_instances.png`` and ``x_instances_overlap.png``: 16-bit grey PNGs of chromosome ids
  (0: no chromosome), the ids of ``x_chromosomes.csv``. The first holds every chromosome
  pixel; where two chromosomes overlap, the first holds one of them and the overlap file the
  other (0 elsewhere). Chromosome ``i`` is ``(first == i) | (overlap == i)``; read them back
  with :func:`read_instance_layers`, ``numpy.asarray(PIL.Image.open(path))`` or
  ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` (uint16 either way).
- ``x_overlay.png``: the image with every chromosome in its own colour (``chromosome_colour``)
  and its id at its centre; an id ending in ``*`` and a white outline: flagged for review;
  a grey outline: an object set aside (nucleus, debris, faint, other spread), not counted.
- ``x_gallery.png``: every chromosome cut out, its long axis turned vertical, longest first,
  in rows of ``GALLERY_COLUMNS`` with its id (in its overlay colour) under it.
- ``x_chromosomes.csv`` (``CHROMOSOME_COLUMNS``) and ``x_set_aside.csv``
  (``SET_ASIDE_COLUMNS``): one row per chromosome, one per object not counted; the box is
  top, left, bottom, right in pixels, bottom and right exclusive.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from amfl.metaphase import Chromosome, MetaphaseResult
from amfl.metaphase_candidates import SET_ASIDE_KINDS
from amfl.outputs import atomic_write, write_csv
from amfl.pictures import save_png, stretch_to_uint8

#: Columns of ``x_chromosomes.csv``.
CHROMOSOME_COLUMNS = (
    "id", "area", "length", "object_id", "separated_by_model", "partner", "review", "reason",
    "top", "left", "bottom", "right",
)
#: Columns of ``x_set_aside.csv``.
SET_ASIDE_COLUMNS = ("object_id", "kind", "area", "reason", "top", "left", "bottom", "right")
#: Columns of a metaphase's row of the run's results table (the CLI adds status and notes).
METAPHASE_RESULT_COLUMNS = (
    "file", "width_px", "height_px", "chromosome_count", "pairs_separated_by_model", "flagged_for_review",
    *(f"set_aside_{kind}" for kind in SET_ASIDE_KINDS), "chromosome_width_px", "model_calls", "seconds",
)
#: What :func:`save_metaphase_outputs` appends to an output stem.
METAPHASE_SUFFIXES = (
    "_instances.png", "_instances_overlap.png", "_overlay.png", "_gallery.png", "_chromosomes.csv", "_set_aside.csv",
)
#: The summary's words for each kind set aside: (one, several).
SET_ASIDE_WORDS = {
    "nucleus": ("nucleus", "nuclei"), "debris": ("debris", "debris"),
    "faint": ("faint blob", "faint blobs"), "other_spread": ("object of another spread", "objects of another spread"),
    "not_counted": ("object with no chromosome of this spread", "objects with no chromosome of this spread"),
}
#: Share of a chromosome's colour in the overlay (the rest is the grey image).
COLOUR_OPACITY = 0.5
REVIEW_OUTLINE = (255, 255, 255)
SET_ASIDE_OUTLINE = (150, 150, 150)
REVIEW_MARK = "*"
#: Gallery: chromosomes per row, and pixels between cut-outs.
GALLERY_COLUMNS = 12
GALLERY_GAP = 8
#: Ids are drawn this many chromosome widths high, within these pixel sizes.
FONT_WIDTHS, FONT_MIN, FONT_MAX = 1.3, 11, 28


def chromosome_colour(chromosome_id: int) -> tuple[int, int, int]:
    """A saturated colour per id; hues a golden angle apart, so consecutive ids (neighbours in
    one object, the two of a pair) differ clearly."""
    red, green, blue = colorsys.hsv_to_rgb((chromosome_id * 0.381966) % 1.0, 0.85, 1.0)
    return round(red * 255), round(green * 255), round(blue * 255)


def display_grey(grey: np.ndarray) -> np.ndarray:
    """The metaphase as a viewer shows it: (H, W) uint8 stretched from its min to its max."""
    return stretch_to_uint8(np.asarray(grey, np.float32))


def overlay_picture(grey: np.ndarray, result: MetaphaseResult) -> np.ndarray:
    """(H, W, 3) uint8: each chromosome tinted in its colour (an overlap in the mean of its
    two), its id drawn at its centre, review flags and set-aside objects outlined."""
    display = display_grey(grey)
    _check_shape(display, result)
    colour_sum = np.zeros((*result.shape, 3), np.float32)
    layers = np.zeros(result.shape, np.float32)
    for chromosome in result.chromosomes:
        window = _window(chromosome.box)
        colour_sum[window][chromosome.mask] += chromosome_colour(chromosome.id)
        layers[window][chromosome.mask] += 1
    picture = np.repeat(display[..., None], 3, axis=-1).astype(np.float32)
    inside = layers > 0
    mean_colour = colour_sum[inside] / layers[inside][:, None]
    picture[inside] = (1 - COLOUR_OPACITY) * picture[inside] + COLOUR_OPACITY * mean_colour
    picture = np.round(picture).astype(np.uint8)
    for kept in result.set_aside:
        _outline(picture, kept.box, kept.mask, SET_ASIDE_OUTLINE)
    for chromosome in result.chromosomes:
        if chromosome.review:
            _outline(picture, chromosome.box, chromosome.mask, REVIEW_OUTLINE)
    image = Image.fromarray(picture)
    draw, font = ImageDraw.Draw(image), _font(result)
    for chromosome in result.chromosomes:
        row, column = _label_point(chromosome, layers, font.size)
        draw.text((column, row), _label(chromosome), fill=(255, 255, 255), font=font, anchor="mm",
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def gallery_picture(grey: np.ndarray, result: MetaphaseResult) -> np.ndarray:
    """(h, w, 3) uint8: the chromosomes cut out and upright, longest first, in rows with their
    ids below (a first karyogram layout); a small picture saying so when there are none."""
    font = _font(result)
    if not result.chromosomes:
        return _text_picture("no chromosomes", font)
    display = display_grey(grey)
    _check_shape(display, result)
    ordered = sorted(result.chromosomes, key=lambda c: (-c.length, c.id))
    cutouts = [upright_cutout(display, chromosome) for chromosome in ordered]
    labels = [_label(chromosome) for chromosome in ordered]
    label_height = max(_text_size(label, font)[1] for label in labels) + GALLERY_GAP // 2
    cell = max(max(c.shape[1] for c in cutouts), *(_text_size(label, font)[0] for label in labels)) + GALLERY_GAP
    rows = [range(start, min(start + GALLERY_COLUMNS, len(ordered))) for start in range(0, len(ordered), GALLERY_COLUMNS)]
    heights = [max(cutouts[i].shape[0] for i in row) for row in rows]
    width = min(len(ordered), GALLERY_COLUMNS) * cell + GALLERY_GAP
    height = sum(heights) + len(rows) * (label_height + GALLERY_GAP) + GALLERY_GAP
    picture = np.zeros((height, width, 3), np.uint8)
    placed, top = [], GALLERY_GAP
    for row, row_height in zip(rows, heights, strict=True):
        for column, index in enumerate(row):
            cutout = cutouts[index]
            left = GALLERY_GAP + column * cell + (cell - GALLERY_GAP - cutout.shape[1]) // 2
            bottom = top + row_height  # bottom-aligned, as in a karyogram
            picture[bottom - cutout.shape[0] : bottom, left : left + cutout.shape[1]] = cutout[..., None]
            placed.append((GALLERY_GAP + column * cell + (cell - GALLERY_GAP) / 2, bottom + GALLERY_GAP // 2, index))
        top += row_height + label_height + GALLERY_GAP
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    for centre, label_top, index in placed:
        draw.text((centre, label_top), labels[index], fill=chromosome_colour(ordered[index].id), font=font, anchor="mt")
    return np.asarray(image)


def upright_cutout(display: np.ndarray, chromosome: Chromosome) -> np.ndarray:
    """(h, w) uint8: the chromosome's pixels of ``display`` (0 around them), rotated about the
    principal axis of its mask so that its long axis is vertical, cropped to it."""
    window = _window(chromosome.box)
    grey = np.where(chromosome.mask, display[window], 0).astype(np.float32)
    rows, columns = np.nonzero(chromosome.mask)
    if len(rows) < 2:
        return grey.astype(np.uint8)
    _, vectors = np.linalg.eigh(np.cov(np.stack([rows, columns]).astype(np.float64)))
    down, across = vectors[:, -1]  # the long axis, (row, column)
    angle = -math.degrees(math.atan2(across, down))
    angle = (angle + 90) % 180 - 90  # the least turn: never upside down
    mask = ndimage.rotate(chromosome.mask.astype(np.float32), angle, order=1, reshape=True) > 0.5
    turned = ndimage.rotate(grey, angle, order=1, reshape=True)
    if not mask.any():  # a mask a pixel thin can vanish; keep it unturned
        return grey.astype(np.uint8)
    kept_rows, kept_columns = np.nonzero(mask)
    crop = np.s_[kept_rows.min() : kept_rows.max() + 1, kept_columns.min() : kept_columns.max() + 1]
    return np.where(mask[crop], np.clip(np.round(turned[crop]), 0, 255), 0).astype(np.uint8)


def chromosome_rows(result: MetaphaseResult) -> list[dict[str, object]]:
    """One row of ``CHROMOSOME_COLUMNS`` per chromosome. The partner is text, empty when none:
    one type for the whole column, which the page's table would otherwise turn into text only
    where some rows have a partner and some do not."""
    return [
        {**{name: value for name, value in c.record().items() if name in CHROMOSOME_COLUMNS},
         "partner": "" if c.partner is None else str(c.partner), **_box_cells(c.box)}
        for c in result.chromosomes
    ]


def set_aside_rows(result: MetaphaseResult) -> list[dict[str, object]]:
    """One row of ``SET_ASIDE_COLUMNS`` per object not counted, with why."""
    return [
        {"object_id": s.object_id, "kind": s.kind, "area": s.area, "reason": s.reason, **_box_cells(s.box)}
        for s in result.set_aside
    ]


def set_aside_counts(result: MetaphaseResult) -> dict[str, int]:
    """How many objects of each kind were set aside (every kind, zeros included)."""
    return {kind: sum(s.kind == kind for s in result.set_aside) for kind in SET_ASIDE_KINDS}


def separated_pairs(result: MetaphaseResult) -> int:
    """Overlapping pairs the model separated (each is two chromosomes, partners)."""
    return sum(c.separated_by_model and c.partner is not None for c in result.chromosomes) // 2


def summary_line(name: str, result: MetaphaseResult) -> str:
    """``x.tif: 46 chromosomes (2 pairs separated by the model, 3 flagged for review); set
    aside: 1 nucleus, 4 debris``."""
    pairs, review = separated_pairs(result), sum(c.review for c in result.chromosomes)
    found = f"{_plural(result.count, 'chromosome', 'chromosomes')} ({_plural(pairs, 'pair', 'pairs')} separated by the model, {review} flagged for review)"
    kept = [_plural(count, *SET_ASIDE_WORDS[kind]) for kind, count in set_aside_counts(result).items() if count]
    return f"{name}: {found}; " + (f"set aside: {', '.join(kept)}" if kept else "nothing set aside")


def metaphase_row(name: str, result: MetaphaseResult) -> dict[str, object]:
    """One row of ``METAPHASE_RESULT_COLUMNS`` for the run's results table."""
    height, width = result.shape
    return {
        "file": name, "width_px": width, "height_px": height, "chromosome_count": result.count,
        "pairs_separated_by_model": separated_pairs(result),
        "flagged_for_review": sum(c.review for c in result.chromosomes),
        **{f"set_aside_{kind}": count for kind, count in set_aside_counts(result).items()},
        "chromosome_width_px": "" if math.isnan(result.width) else round(result.width, 2),
        "model_calls": result.model_calls, "seconds": round(result.seconds, 3),
    }


def save_metaphase_outputs(grey: np.ndarray, result: MetaphaseResult, folder: Path, stem: str) -> list[Path]:
    """Write ``<stem>`` + each of ``METAPHASE_SUFFIXES`` into ``folder`` (see the module's
    docstring), each atomically; returns the paths. An OSError names the file that could not
    be written."""
    folder = Path(folder)
    first, overlap = (_id_layer(layer) for layer in result.instance_layers())
    overlay, gallery = overlay_picture(grey, result), gallery_picture(grey, result)
    pictures = dict(zip(METAPHASE_SUFFIXES[:4], (first, overlap, overlay, gallery), strict=True))
    paths = [atomic_write(folder / f"{stem}{suffix}", lambda temporary, pixels=pixels: save_png(pixels, temporary))
             for suffix, pixels in pictures.items()]
    paths.append(write_csv(chromosome_rows(result), folder / f"{stem}_chromosomes.csv", CHROMOSOME_COLUMNS))
    paths.append(write_csv(set_aside_rows(result), folder / f"{stem}_set_aside.csv", SET_ASIDE_COLUMNS))
    return paths


def read_instance_layers(folder: Path | str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """The two id maps :func:`save_metaphase_outputs` wrote, as (H, W) int32 (the layers of
    :meth:`MetaphaseResult.instance_layers`)."""
    layers = []
    for suffix in METAPHASE_SUFFIXES[:2]:
        with Image.open(Path(folder) / f"{stem}{suffix}") as image:
            layers.append(np.asarray(image).astype(np.int32))
    return layers[0], layers[1]


def _id_layer(layer: np.ndarray) -> np.ndarray:
    if layer.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"{int(layer.max())} chromosomes do not fit a 16-bit instance map")
    return layer.astype(np.uint16)


def _check_shape(display: np.ndarray, result: MetaphaseResult) -> None:
    if display.shape != tuple(result.shape):
        raise ValueError(f"the image is {display.shape}, the metaphase result {tuple(result.shape)}: not its image")


def _window(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    top, left, bottom, right = box
    return np.s_[top:bottom, left:right]


def _box_cells(box: tuple[int, int, int, int]) -> dict[str, int]:
    return dict(zip(("top", "left", "bottom", "right"), box, strict=True))


def _outline(picture: np.ndarray, box: tuple[int, int, int, int], mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Paint the edge pixels of ``mask`` (within ``box``) in ``colour``."""
    edge = mask & ~ndimage.binary_erosion(np.pad(mask, 1))[1:-1, 1:-1]
    picture[_window(box)][edge] = colour


def _label_point(chromosome: Chromosome, layers: np.ndarray, clearance: float) -> tuple[int, int]:
    """Where the chromosome's id goes: its pixel nearest its centroid (a bent one's centroid
    may lie outside it) among those ``clearance`` pixels or more from any other chromosome
    (``layers``: chromosomes per pixel), else the one farthest from them; so the two ids of a
    crossing pair, whose centroids are the crossing, do not cover each other."""
    window = _window(chromosome.box)
    others = layers[window] - chromosome.mask > 0
    if others.any():
        free = ndimage.distance_transform_edt(~others)
        clear = chromosome.mask & (free >= min(clearance, float(free[chromosome.mask].max())))
    else:
        clear = chromosome.mask
    rows, columns = np.nonzero(chromosome.mask)
    clear_rows, clear_columns = np.nonzero(clear)
    nearest = np.argmin((clear_rows - rows.mean()) ** 2 + (clear_columns - columns.mean()) ** 2)
    return chromosome.box[0] + int(clear_rows[nearest]), chromosome.box[1] + int(clear_columns[nearest])


def _label(chromosome: Chromosome) -> str:
    return f"{chromosome.id}{REVIEW_MARK if chromosome.review else ''}"


def _font(result: MetaphaseResult) -> ImageFont.FreeTypeFont:
    size = FONT_MIN if math.isnan(result.width) else round(min(max(FONT_WIDTHS * result.width, FONT_MIN), FONT_MAX))
    return ImageFont.load_default(size=size)


def _text_size(text: str, font: ImageFont.FreeTypeFont) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(math.ceil(right - left)), int(math.ceil(bottom - top))


def _text_picture(text: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    width, height = _text_size(text, font)
    image = Image.new("RGB", (width + 4 * GALLERY_GAP, height + 4 * GALLERY_GAP))
    ImageDraw.Draw(image).text((image.width / 2, image.height / 2), text, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(image)


def _plural(count: int, one: str, several: str) -> str:
    return f"{count} {one if count == 1 else several}"
