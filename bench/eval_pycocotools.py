"""pycocotools' side of `largedet bench eval`: times COCO(gt) + loadRes + evaluate + accumulate +
summarize for one results file and prints {"seconds": ..., "load_seconds": ..., "stats": [...]}.

usage: eval_pycocotools.py GT.json RESULTS.json bbox|segm
"""
import contextlib
import io
import json
import sys
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    gt_path, results_path, iou_type = sys.argv[1:4]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(results_path)
        loaded = time.perf_counter()
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    end = time.perf_counter()
    print(json.dumps({"seconds": end - start, "load_seconds": loaded - start,
                      "stats": [float(s) for s in ev.stats]}))


if __name__ == "__main__":
    main()
