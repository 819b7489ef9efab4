"""Writes the COCO evaluation vectors that tests/evaluation/test_coco_vectors.cpp and
test_evaluate_cli.cpp check our evaluator against, and pycocotools' answers for them.

usage: make_coco_vectors.py [OUT_DIR]   (default: tests/evaluation/data/coco_eval beside this file)

Random synthetic ground truth (60 images, 5 categories with non-contiguous ids, polygon objects of
every COCO area range, some with two polygons and some crossing the border, crowd regions stored as
uncompressed RLE, images without annotations) and detections (jittered true positives, duplicates,
wrong classes, background false positives, scores on a coarse grid so that many tie, one image in
eleven with more than 100 detections). dets_bbox.json holds boxes, dets_segm.json the same
detections as compressed RLE strings.

expected.json holds, for bbox and segm, the 12 statistics pycocotools computes (AP, AP50, AP75,
APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl) and the summary lines it prints. The data depend
only on the seed (Python's own generator, stable across versions); rerun the script after changing
it, with the venv that has pycocotools (.venv/bin/python), and commit the four files.
"""
import contextlib
import importlib.metadata
import io
import json
import math
import os
import random
import sys

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

SEED = 1
NUM_IMAGES = 60
CATEGORY_IDS = [1, 3, 7, 12, 44]


def polygon(rng, cx, cy, radius):
    """A star-shaped polygon around (cx, cy), coordinates rounded to 1/100 pixel like real files."""
    n = rng.randint(3, 12)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    xy = []
    for a in angles:
        r = radius * rng.uniform(0.4, 1.0)
        xy += [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)]
    return xy


def jitter(rng, xy, amount):
    dx, dy = rng.gauss(0, amount), rng.gauss(0, amount)
    return [round(v + (dx if i % 2 == 0 else dy) + rng.gauss(0, amount * 0.3), 2)
            for i, v in enumerate(xy)]


def polygons_to_rle(polygons, h, w):
    return mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))


def blob(rng, h, w):
    """A noisy ellipse as a binary mask (Fortran order, as RLE wants it)."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    rx, ry = 3 + rng.uniform(0, w / 3), 3 + rng.uniform(0, h / 3)
    ys, xs = np.mgrid[0:h, 0:w]
    inside = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 < 1
    noise = np.array([rng.random() > 0.05 for _ in range(h * w)]).reshape(h, w)
    return np.asfortranarray((inside & noise).astype(np.uint8))


def uncompressed_rle(mask):
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def box_of(xy):
    xs, ys = xy[0::2], xy[1::2]
    x0, y0 = min(xs), min(ys)
    return [round(x0, 2), round(y0, 2), round(max(xs) - x0, 2), round(max(ys) - y0, 2)]


def make(rng):
    gt = {"info": {"description": "synthetic eval vectors seed %d" % SEED}, "images": [],
          "annotations": [], "categories": [
              {"id": c, "name": "class_%d" % c, "supercategory": "thing"} for c in CATEGORY_IDS]}
    bbox, segm = [], []

    def detect(image_id, category, xy, h, w):
        score = round(rng.randint(1, 20) * 0.05 - rng.choice([0, 0.0001]), 4)  # coarse: ties
        bbox.append({"image_id": image_id, "category_id": category, "bbox": box_of(xy),
                     "score": score})
        rle = polygons_to_rle([xy], h, w)
        segm.append({"image_id": image_id, "category_id": category, "score": score,
                     "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})

    ann_id = 1
    for i in range(NUM_IMAGES):
        image_id = 1000 + 3 * i
        w, h = rng.randint(60, 640), rng.randint(60, 460)
        gt["images"].append({"id": image_id, "width": w, "height": h,
                             "file_name": "%012d.jpg" % image_id})
        num_objects = 0 if rng.random() < 0.15 else rng.randint(0, 8)
        for _ in range(num_objects):
            category = rng.choice(CATEGORY_IDS)
            ann = {"id": ann_id, "image_id": image_id, "category_id": category}
            ann_id += 1
            if rng.random() < 0.1:
                ann["iscrowd"] = 1
                ann["segmentation"] = uncompressed_rle(blob(rng, h, w))
                rle = mask_utils.frPyObjects(ann["segmentation"], h, w)
                xy = None
            else:
                ann["iscrowd"] = 0
                # Radii over small (< 32^2), medium and large areas; some cross the border.
                radius = 2 + rng.random() ** 2 * 0.6 * min(h, w)
                xy = polygon(rng, rng.uniform(0, w), rng.uniform(0, h), radius)
                ann["segmentation"] = [xy]
                if rng.random() < 0.15:
                    ann["segmentation"].append(polygon(rng, rng.uniform(0, w), rng.uniform(0, h),
                                                       2 + rng.uniform(0, 20)))
                rle = polygons_to_rle(ann["segmentation"], h, w)
            ann["area"] = float(mask_utils.area(rle))
            ann["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
            gt["annotations"].append(ann)
            if xy is None:
                continue
            # Jittered copies (duplicates when more than one), a wrong class now and then.
            for _ in range(rng.randint(0, 2) + (rng.random() < 0.8)):
                amount = 0.3 if rng.random() < 0.6 else 2.0
                wrong = rng.random() < 0.15
                detect(image_id, rng.choice(CATEGORY_IDS) if wrong else category,
                       jitter(rng, xy, amount), h, w)
        # Background false positives; one image in eleven gets more than 100 detections.
        background = rng.randint(101, 140) if i % 11 == 5 else rng.randint(0, 3)
        for _ in range(background):
            xy = polygon(rng, rng.uniform(0, w), rng.uniform(0, h), 2 + rng.uniform(0, 40))
            detect(image_id, rng.choice(CATEGORY_IDS), xy, h, w)
    # The evaluator must not rely on file order.
    rng.shuffle(gt["annotations"])
    order = list(range(len(bbox)))
    rng.shuffle(order)
    return gt, [bbox[k] for k in order], [segm[k] for k in order]


def evaluate(gt_path, results_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = COCOeval(gt, gt.loadRes(results_path), iou_type)
        ev.evaluate()
        ev.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.summarize()
    return [float(s) for s in ev.stats], summary.getvalue().splitlines()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "data", "coco_eval")
    os.makedirs(out, exist_ok=True)
    gt, bbox, segm = make(random.Random(SEED))
    files = {"gt.json": gt, "dets_bbox.json": bbox, "dets_segm.json": segm}
    for name, content in files.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(content, f, separators=(",", ":"))
    expected = {"pycocotools_version": importlib.metadata.version("pycocotools"),
                "stats_names": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
                                "ARs", "ARm", "ARl"]}
    for iou_type, results in (("bbox", "dets_bbox.json"), ("segm", "dets_segm.json")):
        stats, lines = evaluate(os.path.join(out, "gt.json"), os.path.join(out, results), iou_type)
        expected[iou_type] = stats
        expected[iou_type + "_summary"] = lines
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote", out, {t: round(expected[t][0], 4) for t in ("bbox", "segm")})


if __name__ == "__main__":
    main()
