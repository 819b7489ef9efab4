"""Oracle for the evaluation tests: runs pycocotools on files the C++ test generated.

usage: pycocotools_oracle.py GT.json BBOX_RESULTS.json SEGM_RESULTS.json BOTH_RESULTS.json OUT.json

BOTH_RESULTS holds masks and boxes (detectron2's format) and is evaluated as segm.

Writes {"bbox": {...}, "segm": {...}, "segm_with_boxes": {...}, "gt_masks": {ann_id: [counts string, area]},
"dt_masks": [[area, bbox]...]} where each evaluation holds the 12 stats and the flattened
precision [T,R,K,A,M] and recall [T,K,A,M] arrays. Exits 3 when pycocotools cannot be imported,
so the C++ test can skip instead of fail.
"""
import contextlib
import io
import json
import sys

try:
    import numpy as np
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as e:  # the test skips
    print("pycocotools unavailable:", e)
    sys.exit(3)


def evaluate(gt, results_path, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results_path)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            ev.summarize()
    return dt, {
        "stats": [float(s) for s in ev.stats],
        "precision": ev.eval["precision"].ravel().tolist(),
        "recall": ev.eval["recall"].ravel().tolist(),
        "summary": summary.getvalue(),
    }


def main():
    gt_path, bbox_path, segm_path, both_path, out_path = sys.argv[1:6]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
    out = {}
    _, out["bbox"] = evaluate(gt, bbox_path, "bbox")
    dt, out["segm"] = evaluate(gt, segm_path, "segm")
    _, out["segm_with_boxes"] = evaluate(gt, both_path, "segm")
    _, out["bbox_of_masks"] = evaluate(gt, segm_path, "bbox")
    gt_masks = {}
    for ann in gt.dataset["annotations"]:
        rle = gt.annToRLE(ann)
        if isinstance(rle, list):
            rle = rle[0]
        counts = rle["counts"]
        gt_masks[str(ann["id"])] = [counts.decode() if isinstance(counts, bytes) else counts,
                                    int(mask_utils.area(rle))]
    out["gt_masks"] = gt_masks
    out["dt_masks"] = [[float(a["area"]), [float(v) for v in a["bbox"]]]
                       for a in dt.dataset["annotations"]]
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
