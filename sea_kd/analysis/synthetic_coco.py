"""Deterministic synthetic COCO-format detection / instance segmentation data.

The generator draws filled geometric shapes (six categories) onto textured
backgrounds and writes the images plus COCO-style annotation files::

    out_dir/
        train/000001.png ...
        val/000001.png ...
        annotations/instances_train.json
        annotations/instances_val.json
        meta.json

Design choices that make the task non-trivial yet quickly learnable:

* The object colour is drawn independently of the category from one shared
  distribution, so only the shape identifies the class.
* Object sizes are log-uniform between about 8% and 50% of the image side, so
  both small and large objects are frequent.
* Backgrounds combine low-frequency colour noise, stripes or gradients, thin
  clutter lines and pixel noise, and differ between images.
* Objects are rotated, slightly stretched, shaded and noisy, may overlap
  partially (each stays at least about 70% visible) and may be cut by the
  image border.

Everything is driven by :class:`numpy.random.Generator` instances derived from
the seed, the split and the image index, so the output is bit-for-bit
reproducible and an image does not depend on how many images are generated.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import os.path as osp
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'SHAPE_CLASSES', 'SYNTHETIC_CLASSES', 'GENERATOR_VERSION',
    'generate_synthetic_coco'
]

#: Every shape the generator draws, in category order: a data set of ``n``
#: classes uses the first ``n`` (COCO category ids ``index + 1``).
SHAPE_CLASSES: Tuple[str, ...] = (
    'circle', 'square', 'triangle', 'ring', 'cross', 'star', 'pentagon',
    'hexagon', 'octagon', 'star4', 'star8', 'square_ring', 'triangle_ring',
    'semicircle', 'ellipse', 'rhombus', 'l_shape', 't_shape', 'arrow',
    'trapezoid')
#: The default data set's classes (the demo's six).
SYNTHETIC_CLASSES: Tuple[str, ...] = SHAPE_CLASSES[:6]

#: Bumped whenever the drawing code changes, so that cached data sets made by
#: an older generator are regenerated instead of silently reused.
GENERATOR_VERSION = 1

_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
_IMG_NAME_RE = re.compile(r'^\d{6}\.png$')
_MIN_SIZE_FRAC = 0.08
_MAX_SIZE_FRAC = 0.5
_MIN_BOX_SIDE = 4.0
_MAX_BOX_IOU = 0.5
_MAX_OCCLUSION = 0.3
_MIN_KEPT_AREA = 0.5
_MIN_CONTRAST = 60.0
_PLACEMENT_TRIES = 40
_CIRCLE_VERTICES = 32
_SUBPIXEL_SHIFT = 4


# ---------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------
def _regular_polygon(n: int, radius: float, phase: float = 0.0) -> np.ndarray:
    """Vertices of a regular ``n``-gon around the origin (counter-clockwise).

    Args:
        n: Number of vertices.
        radius: Circumradius.
        phase: Angle of the first vertex in radians.

    Returns:
        Array of shape ``(n, 2)``.
    """
    angles = phase + 2.0 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    """A star of ``points`` tips on the unit circle and valleys at radius
    ``inner``, the first tip pointing up."""
    pts = np.empty((2 * points, 2))
    pts[0::2] = _regular_polygon(points, 1.0, -np.pi / 2)
    pts[1::2] = _regular_polygon(points, inner, -np.pi / 2 + np.pi / points)
    return pts


def _centred(pts) -> np.ndarray:
    """Polygon scaled and shifted so that its vertices fit the unit circle
    around their bounding box's centre."""
    pts = np.asarray(pts, dtype=np.float64)
    pts = pts - (pts.min(axis=0) + pts.max(axis=0)) / 2
    return pts / np.linalg.norm(pts, axis=1).max()


def _extra_contours(category: str, rng: np.random.Generator
                    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The shapes after the first six (:data:`SHAPE_CLASSES`)."""
    sides = dict(pentagon=5, hexagon=6, octagon=8)
    if category in sides:
        return _regular_polygon(sides[category], 1.0, -np.pi / 2), None
    if category == 'star4':
        return _star(4, rng.uniform(0.3, 0.4)), None
    if category == 'star8':
        return _star(8, rng.uniform(0.55, 0.65)), None
    if category == 'square_ring':
        return (_regular_polygon(4, 1.0, np.pi / 4),
                _regular_polygon(4, rng.uniform(0.45, 0.6), np.pi / 4))
    if category == 'triangle_ring':
        return (_regular_polygon(3, 1.0, -np.pi / 2),
                _regular_polygon(3, rng.uniform(0.35, 0.45), -np.pi / 2))
    if category == 'semicircle':
        angles = np.linspace(0.0, np.pi, _CIRCLE_VERTICES // 2 + 1)
        return _centred(np.stack([np.cos(angles), -np.sin(angles)], 1)), None
    if category == 'ellipse':
        return _regular_polygon(_CIRCLE_VERTICES, 1.0) * np.array(
            [1.0, rng.uniform(0.4, 0.5)]), None
    if category == 'rhombus':
        return _regular_polygon(4, 1.0) * np.array(
            [1.0, rng.uniform(0.4, 0.55)]), None
    if category == 'l_shape':
        w = rng.uniform(0.35, 0.45)
        return _centred([(0, 0), (1, 0), (1, w), (w, w), (w, 1),
                         (0, 1)]), None
    if category == 't_shape':
        w = rng.uniform(0.3, 0.4)
        return _centred([(0, 0), (1, 0), (1, w), ((1 + w) / 2, w),
                         ((1 + w) / 2, 1), ((1 - w) / 2, 1),
                         ((1 - w) / 2, w), (0, w)]), None
    if category == 'arrow':
        w, head = rng.uniform(0.15, 0.22), rng.uniform(0.35, 0.45)
        return _centred([(0, -w), (1 - head, -w), (1 - head, -2.2 * w),
                         (1, 0), (1 - head, 2.2 * w), (1 - head, w),
                         (0, w)]), None
    if category == 'trapezoid':
        top = rng.uniform(0.3, 0.5)
        return _centred([(-1, 0.6), (1, 0.6), (top, -0.6),
                         (-top, -0.6)]), None
    raise ValueError(f'unknown category {category!r}')


def _shape_contours(category: str, rng: np.random.Generator
                    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Unit-size outline of a shape centred at the origin.

    The outer contour fits into the unit circle (circumradius 1).

    Args:
        category: One of :data:`SYNTHETIC_CLASSES`.
        rng: Random generator for the shape proportions.

    Returns:
        ``(outer, hole)``: counter-clockwise outer contour of shape ``(n, 2)``
        and, for rings, the hole contour (else ``None``).
    """
    if category == 'circle':
        return _regular_polygon(_CIRCLE_VERTICES, 1.0), None
    if category == 'square':
        return _regular_polygon(4, 1.0, np.pi / 4), None
    if category == 'triangle':
        return _regular_polygon(3, 1.0, -np.pi / 2), None
    if category == 'ring':
        inner = rng.uniform(0.45, 0.65)
        return (_regular_polygon(_CIRCLE_VERTICES, 1.0),
                _regular_polygon(_CIRCLE_VERTICES, inner))
    if category == 'cross':
        # Plus sign: arms of half-width ``a`` reaching to ``b`` so that the arm
        # corners lie on the unit circle.
        a = rng.uniform(0.3, 0.4)
        b = math.sqrt(1.0 - a * a)
        pts = [(b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a),
               (-b, -a), (-a, -a), (-a, -b), (a, -b), (a, -a)]
        return np.asarray(pts, dtype=np.float64), None
    if category == 'star':
        inner = rng.uniform(0.38, 0.5)
        outer = _regular_polygon(5, 1.0, -np.pi / 2)
        valleys = _regular_polygon(5, inner, -np.pi / 2 + np.pi / 5)
        pts = np.empty((10, 2))
        pts[0::2] = outer
        pts[1::2] = valleys
        return pts, None
    return _extra_contours(category, rng)


def _keyhole(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Single polygon describing ``outer`` minus ``hole``.

    The hole is traversed in the opposite direction and joined to the outer
    contour by a zero-width bridge, so the polygon rasterises to an annulus
    (COCO polygons cannot hold holes) and its shoelace area is
    ``area(outer) - area(hole)``.

    Args:
        outer: Outer contour, shape ``(n, 2)``, counter-clockwise.
        hole: Hole contour, shape ``(m, 2)``, counter-clockwise.

    Returns:
        Polygon of shape ``(n + m + 2, 2)``.
    """
    hole_reversed = np.concatenate([hole[:1], hole[:0:-1]], axis=0)
    return np.concatenate(
        [outer, outer[:1], hole_reversed, hole[:1]], axis=0)


def _polygon_area(poly: np.ndarray) -> float:
    """Absolute shoelace area of a polygon of shape ``(n, 2)``."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) -
                           np.dot(y, np.roll(x, -1))))


def _clip_polygon(poly: np.ndarray, width: float,
                  height: float) -> np.ndarray:
    """Clip a (possibly concave) polygon to ``[0, width] x [0, height]``.

    Sutherland-Hodgman clipping against the four image borders. Concave input
    can yield zero-width slivers along the border, which rasterise to nothing
    and do not change the area.

    Args:
        poly: Polygon of shape ``(n, 2)``.
        width: Image width.
        height: Image height.

    Returns:
        Clipped polygon of shape ``(k, 2)`` (``k`` may be 0).
    """
    if (poly[:, 0].min() >= 0 and poly[:, 1].min() >= 0
            and poly[:, 0].max() <= width and poly[:, 1].max() <= height):
        return poly
    # (axis, limit, keep_greater_or_equal)
    edges = ((0, 0.0, True), (0, float(width), False), (1, 0.0, True),
             (1, float(height), False))
    pts = [tuple(p) for p in poly]
    for axis, limit, keep_ge in edges:
        if not pts:
            break
        out: List[Tuple[float, float]] = []

        def inside(p: Tuple[float, float]) -> bool:
            return p[axis] >= limit if keep_ge else p[axis] <= limit

        prev = pts[-1]
        prev_in = inside(prev)
        for cur in pts:
            cur_in = inside(cur)
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                cross = [prev[0] + t * (cur[0] - prev[0]),
                         prev[1] + t * (cur[1] - prev[1])]
                cross[axis] = limit  # exact, avoids rounding outside
                out.append((cross[0], cross[1]))
            if cur_in:
                out.append(cur)
            prev, prev_in = cur, cur_in
        pts = out
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _dedup(poly: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicate vertices (including last == first)."""
    if len(poly) < 2:
        return poly
    keep = np.any(poly != np.roll(poly, 1, axis=0), axis=1)
    return poly[keep]


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
             inter)
    return inter / union


def _to_cv2_points(poly: np.ndarray) -> np.ndarray:
    """Continuous COCO coordinates to fixed-point cv2 pixel-centre points.

    COCO pixel ``i`` covers ``[i, i + 1)`` while cv2 puts pixel ``i``'s centre
    at integer ``i``; hence the half-pixel offset.
    """
    scale = 1 << _SUBPIXEL_SHIFT
    return np.round((poly - 0.5) * scale).astype(np.int32).reshape(-1, 1, 2)


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """RGB colour (float, 0..255) from the class-independent distribution."""
    h = rng.uniform(0.0, 1.0)
    s = rng.uniform(0.2, 1.0)
    v = rng.uniform(0.3, 1.0)
    return np.asarray(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _background(rng: np.random.Generator, size: int,
                grid_xy: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Textured RGB background as float32 array of shape ``(size, size, 3)``.

    Args:
        rng: Random generator.
        size: Image side in pixels.
        grid_xy: Normalised ``(x, y)`` coordinate grids in ``[0, 1)``.

    Returns:
        Background image (not yet clipped to 0..255).
    """
    xs, ys = grid_xy
    img = np.empty((size, size, 3), np.float32)
    img[:] = rng.uniform(50.0, 205.0, 3)

    # Low-frequency colour noise: a coarse random grid upsampled bicubically.
    cells = int(rng.integers(3, 9))
    coarse = rng.normal(0.0, rng.uniform(12.0, 40.0), (cells, cells, 3))
    img += cv2.resize(coarse.astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)

    kind = int(rng.integers(0, 3))
    theta = rng.uniform(0.0, np.pi)
    proj = xs * math.cos(theta) + ys * math.sin(theta)
    if kind in (0, 2):  # stripes
        freq = rng.uniform(2.0, 12.0)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) + 1e-6
        amp = rng.uniform(8.0, 28.0)
        wave = np.sin(2 * np.pi * freq * proj + rng.uniform(0, 2 * np.pi))
        img += (wave[..., None] * (amp * direction)).astype(np.float32)
    if kind in (1, 2):  # linear gradient
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) + 1e-6
        amp = rng.uniform(30.0, 90.0)
        img += ((proj - proj.mean())[..., None] *
                (amp * direction)).astype(np.float32)

    # Clutter: thin random line segments that are not objects.
    for _ in range(int(rng.integers(2, 9))):
        p1 = rng.uniform(-0.1 * size, 1.1 * size, 2)
        p2 = p1 + rng.normal(0.0, 0.35 * size, 2)
        colour = tuple(float(c) for c in _random_colour(rng))
        cv2.line(img, _int_pt(p1), _int_pt(p2), colour,
                 thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)

    img += rng.normal(0.0, rng.uniform(2.0, 8.0),
                      img.shape).astype(np.float32)
    return img


def _int_pt(p: np.ndarray) -> Tuple[int, int]:
    """Round a 2-vector to an integer cv2 point."""
    return int(round(float(p[0]))), int(round(float(p[1])))


def _object_alpha(outer: np.ndarray, hole: Optional[np.ndarray],
                  size: int) -> np.ndarray:
    """Anti-aliased coverage in ``[0, 1]`` of a shape (hole cut out)."""
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [_to_cv2_points(outer)], 255, lineType=cv2.LINE_AA,
                 shift=_SUBPIXEL_SHIFT)
    if hole is not None:
        cv2.fillPoly(canvas, [_to_cv2_points(hole)], 0, lineType=cv2.LINE_AA,
                     shift=_SUBPIXEL_SHIFT)
    return canvas.astype(np.float32) / 255.0


def _paint_object(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray,
                  centre: np.ndarray, radius: float,
                  rng: np.random.Generator,
                  grid_px: Tuple[np.ndarray, np.ndarray]) -> None:
    """Composite a shaded, noisy object of the given colour in place.

    Args:
        img: Float image ``(H, W, 3)``, modified in place.
        alpha: Coverage map ``(H, W)``.
        colour: Base RGB colour.
        centre: Object centre ``(x, y)`` in pixels.
        radius: Object circumradius in pixels.
        rng: Random generator.
        grid_px: Pixel-centre coordinate grids ``(x, y)``.
    """
    ys_idx, xs_idx = np.nonzero(alpha)
    if len(ys_idx) == 0:
        return
    y0, y1 = ys_idx.min(), ys_idx.max() + 1
    x0, x1 = xs_idx.min(), xs_idx.max() + 1
    a = alpha[y0:y1, x0:x1, None]
    gx = grid_px[0][y0:y1, x0:x1] - centre[0]
    gy = grid_px[1][y0:y1, x0:x1] - centre[1]
    phi = rng.uniform(0.0, 2 * np.pi)
    strength = rng.uniform(0.08, 0.3)
    shade = 1.0 + strength * (gx * math.cos(phi) + gy * math.sin(phi)) / max(
        radius, 1.0)
    patch = shade[..., None] * colour[None, None, :].astype(np.float32)
    patch += rng.normal(0.0, rng.uniform(2.0, 9.0),
                        patch.shape).astype(np.float32)
    region = img[y0:y1, x0:x1]
    region *= (1.0 - a)
    region += a * patch


# ---------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------
def _make_image(rng: np.random.Generator, size: int, min_objects: int,
                max_objects: int, num_classes: int = len(SYNTHETIC_CLASSES),
                size_fracs: Tuple[float, float] = (_MIN_SIZE_FRAC,
                                                   _MAX_SIZE_FRAC)
                ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Draw one image and return it with its (image-less) annotations.

    Args:
        rng: Random generator dedicated to this image.
        size: Image side in pixels.
        min_objects: Minimum number of objects to attempt.
        max_objects: Maximum number of objects to attempt.
        num_classes: Draw from the first ``num_classes`` shapes.
        size_fracs: Range of an object's diameter as a fraction of the
            image side (drawn log-uniformly).

    Returns:
        ``(image, objects)``: an RGB uint8 image and a list of dicts with
        ``category_id``, ``bbox``, ``area`` and ``segmentation``.
    """
    coords = np.arange(size, dtype=np.float32)
    xs_px, ys_px = np.meshgrid(coords, coords)
    img = _background(rng, size, (xs_px / size, ys_px / size))

    num_objects = int(rng.integers(min_objects, max_objects + 1))
    placed_boxes: List[List[float]] = []
    placed_masks: List[np.ndarray] = []
    objects: List[Dict[str, Any]] = []
    min_radius = 0.5 * max(6.0, 1.5 * _MIN_BOX_SIDE)
    log_lo, log_hi = math.log(size_fracs[0]), math.log(size_fracs[1])

    for _ in range(num_objects):
        cat_idx = int(rng.integers(0, num_classes))
        category = SHAPE_CLASSES[cat_idx]
        for _attempt in range(_PLACEMENT_TRIES):
            radius = max(0.5 * size * math.exp(rng.uniform(log_lo, log_hi)),
                         min_radius)
            outer, hole = _shape_contours(category, rng)
            stretch = rng.uniform(0.85, 1.18)
            angle = rng.uniform(0.0, 2 * np.pi)
            rot = np.array([[math.cos(angle), -math.sin(angle)],
                            [math.sin(angle), math.cos(angle)]])
            lin = rot @ np.diag([radius * stretch, radius / stretch])
            margin = 0.35 * radius
            centre = rng.uniform(margin, size - margin, 2)
            outer = outer @ lin.T + centre
            if hole is not None:
                hole = hole @ lin.T + centre
                ann_poly = _keyhole(outer, hole)
            else:
                ann_poly = outer

            clipped = _dedup(np.round(
                _clip_polygon(ann_poly, size, size), 2))
            if len(clipped) < 3:
                continue
            full_area = _polygon_area(ann_poly)
            area = _polygon_area(clipped)
            if area < _MIN_KEPT_AREA * full_area:
                continue
            x1, y1 = clipped.min(axis=0)
            x2, y2 = clipped.max(axis=0)
            if x2 - x1 < _MIN_BOX_SIDE or y2 - y1 < _MIN_BOX_SIDE:
                continue
            box = [float(x1), float(y1), float(x2), float(y2)]
            if any(_box_iou(box, b) > _MAX_BOX_IOU for b in placed_boxes):
                continue
            alpha = _object_alpha(outer, hole, size)
            mask = alpha > 0.5
            mask_area = int(np.count_nonzero(mask))
            if mask_area == 0:
                continue
            too_hidden = False
            for other in placed_masks:
                inter = int(np.count_nonzero(mask & other))
                smaller = min(mask_area, int(np.count_nonzero(other)))
                if inter > _MAX_OCCLUSION * max(smaller, 1):
                    too_hidden = True
                    break
            if too_hidden:
                continue

            # Colour: class independent, but visibly different from what is
            # underneath (keep the best of a few draws).
            under = img[mask].mean(axis=0)
            colour = _random_colour(rng)
            best = float(np.linalg.norm(colour - under))
            for _c in range(12):
                if best >= _MIN_CONTRAST:
                    break
                cand = _random_colour(rng)
                dist = float(np.linalg.norm(cand - under))
                if dist > best:
                    colour, best = cand, dist
            _paint_object(img, alpha, colour, centre, radius, rng,
                          (xs_px + 0.5, ys_px + 0.5))

            placed_boxes.append(box)
            placed_masks.append(mask)
            objects.append(
                dict(
                    category_id=cat_idx + 1,
                    bbox=[round(box[0], 2), round(box[1], 2),
                          round(box[2] - box[0], 2),
                          round(box[3] - box[1], 2)],
                    area=round(area, 2),
                    segmentation=[[float(v) for v in clipped.reshape(-1)]],
                    iscrowd=0))
            break

    img += rng.normal(0.0, rng.uniform(1.0, 4.0), img.shape).astype(
        np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects


# ---------------------------------------------------------------------------
# Data set level
# ---------------------------------------------------------------------------
def _categories(num_classes: int) -> List[Dict[str, Any]]:
    return [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(SHAPE_CLASSES[:num_classes])
    ]


def _generate_split(split: str, num_images: int, img_dir: str, ann_file: str,
                    img_size: int, seed: int, min_objects: int,
                    max_objects: int, num_classes: int,
                    size_fracs: Tuple[float, float]) -> Tuple[int, int]:
    """Write one split's images and annotation file.

    Returns:
        ``(num_images, num_annotations)``.
    """
    os.makedirs(img_dir, exist_ok=True)
    # Remove stale images from an earlier generation (only our own names).
    for name in os.listdir(img_dir):
        if _IMG_NAME_RE.match(name):
            os.remove(osp.join(img_dir, name))

    images: List[Dict[str, Any]] = []
    annotations: List[Dict[str, Any]] = []
    for index in range(num_images):
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
        img_rgb, objects = _make_image(rng, img_size, min_objects,
                                       max_objects, num_classes, size_fracs)
        image_id = index + 1
        file_name = f'{image_id:06d}.png'
        # cv2 writes BGR; the arrays above are RGB.
        if not cv2.imwrite(osp.join(img_dir, file_name), img_rgb[..., ::-1]):
            raise IOError(f'failed to write {osp.join(img_dir, file_name)}')
        images.append(
            dict(id=image_id, file_name=file_name, width=img_size,
                 height=img_size))
        for obj in objects:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id, **obj))

    coco = dict(
        info=dict(
            description=f'sea_kd synthetic shapes ({split})',
            version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=_categories(num_classes))
    tmp = ann_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    os.replace(tmp, ann_file)
    return len(images), len(annotations)


def _paths(out_dir: str) -> Dict[str, str]:
    ann_dir = osp.join(out_dir, 'annotations')
    return dict(
        out_dir=out_dir,
        train_img_dir=osp.join(out_dir, 'train'),
        val_img_dir=osp.join(out_dir, 'val'),
        test_img_dir=osp.join(out_dir, 'test'),
        train_ann_file=osp.join(ann_dir, 'instances_train.json'),
        val_ann_file=osp.join(ann_dir, 'instances_val.json'),
        test_ann_file=osp.join(ann_dir, 'instances_test.json'),
        meta_file=osp.join(out_dir, 'meta.json'))


def _existing_summary(paths: Dict[str, str],
                      args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Summary of a complete earlier generation with the same arguments."""
    try:
        with open(paths['meta_file']) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if (meta.get('generator_version') != GENERATOR_VERSION
            or meta.get('args') != args):
        return None
    summary = meta.get('summary')
    if not isinstance(summary, dict):
        return None
    splits = ('train', 'val', 'test') if args.get('num_test') else ('train',
                                                                    'val')
    for split in splits:
        if not osp.isfile(paths[f'{split}_ann_file']):
            return None
        img_dir = paths[f'{split}_img_dir']
        n = summary.get(f'num_{split}_images', -1)
        if n and not osp.isfile(osp.join(img_dir, f'{n:06d}.png')):
            return None
    return summary


def generate_synthetic_coco(out_dir: str,
                            num_train: int = 2000,
                            num_val: int = 200,
                            img_size: int = 128,
                            num_test: int = 0,
                            seed: int = 0,
                            min_objects: int = 1,
                            max_objects: int = 6,
                            num_classes: int = len(SYNTHETIC_CLASSES),
                            min_size_frac: float = _MIN_SIZE_FRAC,
                            max_size_frac: float = _MAX_SIZE_FRAC,
                            overwrite: bool = False) -> Dict[str, Any]:
    """Generate (or reuse) a synthetic COCO-format shapes data set.

    Writes ``train/*.png``, ``val/*.png``,
    ``annotations/instances_{train,val}.json`` and ``meta.json`` under
    ``out_dir``. ``file_name`` entries are bare names (``000001.png``), i.e.
    relative to ``data_prefix=dict(img='train/')`` or ``'val/'``. Category ids
    start at 1 in the order of :data:`SYNTHETIC_CLASSES`. Each annotation has
    ``bbox`` (``[x, y, w, h]``), ``area`` (polygon area), ``iscrowd=0`` and
    ``segmentation`` as a list holding one flat ``[x1, y1, x2, y2, ...]``
    polygon (rings use a keyhole polygon that excludes the hole).

    If ``out_dir`` already holds a complete data set generated with the same
    arguments (and generator version), nothing is written unless
    ``overwrite`` is True.

    Args:
        out_dir: Output directory (created if needed).
        num_train: Number of training images.
        num_val: Number of validation images.
        num_test: Number of test images (``test/``,
            ``annotations/instances_test.json``), a split never used for
            choosing hyper-parameters; 0 writes none. Each split draws from
            its own random stream, so adding a test split leaves the
            training and validation images unchanged.
        img_size: Side of the square images in pixels.
        seed: Base random seed; train and val use different derived streams.
        min_objects: Minimum number of objects attempted per image.
        max_objects: Maximum number of objects attempted per image.
        num_classes: Number of classes, the first of
            :data:`SHAPE_CLASSES` (6: the demo's; at most 20).
        min_size_frac: Smallest object diameter as a fraction of the image
            side (objects under 4 px are not placed).
        max_size_frac: Largest object diameter as a fraction of the side.
        overwrite: Regenerate even if a matching data set exists.

    Returns:
        Summary dict with the output paths (``out_dir``, ``train_img_dir``,
        ``val_img_dir``, ``train_ann_file``, ``val_ann_file``,
        ``meta_file``), ``classes``, ``num_{train,val}_images``,
        ``num_{train,val}_annotations``, ``seconds`` (generation time) and
        ``generated`` (False when an existing data set was reused).

    Raises:
        ValueError: On invalid arguments.
    """
    if num_train < 0 or num_val < 0 or num_test < 0:
        raise ValueError('num_train, num_val and num_test must be >= 0')
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')
    if not 1 <= min_objects <= max_objects:
        raise ValueError('need 1 <= min_objects <= max_objects, got '
                         f'{min_objects} and {max_objects}')
    if not 1 <= num_classes <= len(SHAPE_CLASSES):
        raise ValueError(f'num_classes must be in 1..{len(SHAPE_CLASSES)} '
                         f'(the shapes the generator draws), got '
                         f'{num_classes}')
    if not 0 < min_size_frac <= max_size_frac <= 1:
        raise ValueError('need 0 < min_size_frac <= max_size_frac <= 1, got '
                         f'{min_size_frac} and {max_size_frac}')
    args = dict(
        num_train=int(num_train),
        num_val=int(num_val),
        img_size=int(img_size),
        seed=int(seed),
        min_objects=int(min_objects),
        max_objects=int(max_objects))
    if num_test:  # absent when 0: data sets written before keep matching
        args['num_test'] = int(num_test)
    # absent at their defaults, for the same reason
    for key, value, default in (
            ('num_classes', int(num_classes), len(SYNTHETIC_CLASSES)),
            ('min_size_frac', float(min_size_frac), _MIN_SIZE_FRAC),
            ('max_size_frac', float(max_size_frac), _MAX_SIZE_FRAC)):
        if value != default:
            args[key] = value
    paths = _paths(osp.abspath(out_dir))

    if not overwrite:
        existing = _existing_summary(paths, args)
        if existing is not None:
            return dict(existing, **paths, generated=False)

    start = time.perf_counter()
    os.makedirs(osp.dirname(paths['train_ann_file']), exist_ok=True)
    if osp.exists(paths['meta_file']):
        # Invalidate first so an interrupted run is never taken as complete.
        os.remove(paths['meta_file'])
    summary: Dict[str, Any] = dict(
        classes=list(SHAPE_CLASSES[:num_classes]))
    splits = [('train', num_train), ('val', num_val)]
    if num_test:
        splits.append(('test', num_test))
    for split, num in splits:
        n_img, n_ann = _generate_split(split, num, paths[f'{split}_img_dir'],
                                       paths[f'{split}_ann_file'], img_size,
                                       seed, min_objects, max_objects,
                                       num_classes,
                                       (min_size_frac, max_size_frac))
        summary[f'num_{split}_images'] = n_img
        summary[f'num_{split}_annotations'] = n_ann
    summary['seconds'] = round(time.perf_counter() - start, 3)

    meta = dict(
        generator='sea_kd.analysis.synthetic_coco',
        generator_version=GENERATOR_VERSION,
        args=args,
        summary=summary)
    tmp = paths['meta_file'] + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, paths['meta_file'])
    return dict(summary, **paths, generated=True)
