"""A peer's side of `largedet bench eval`: times COCO(gt) + loadRes + evaluate + accumulate +
summarize for one results file with one pycocotools-compatible evaluator, and prints
{"tool": ..., "version": ..., "seconds": ..., "load_seconds": ..., "stats": [...]}.

usage: eval_peer.py TOOL GT.json RESULTS.json bbox|segm
TOOL: pycocotools | faster-coco-eval | ultrafast-pycocotools | hotcoco (bench/setup_eval_peers.sh
installs them all in one venv; the project's .venv has pycocotools)
"""
import contextlib
import importlib.metadata
import io
import json
import sys
import time


def evaluator(tool):
    """(COCO, COCOeval) of `tool`, each used as pycocotools' are."""
    if tool == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif tool == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    elif tool == "ultrafast-pycocotools":
        from ultrafast_pycocotools import COCO, COCOeval
    elif tool == "hotcoco":
        from hotcoco import COCO, COCOeval
    else:
        sys.exit(f"unknown tool '{tool}': pycocotools, faster-coco-eval, ultrafast-pycocotools "
                 "or hotcoco")
    return COCO, COCOeval


def main():
    tool, gt_path, results_path, iou_type = sys.argv[1:5]
    try:
        COCO, COCOeval = evaluator(tool)
    except ImportError as e:
        print(json.dumps({"tool": tool, "missing": str(e)}))
        return
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
    print(json.dumps({"tool": tool, "version": importlib.metadata.version(tool),
                      "seconds": end - start, "load_seconds": loaded - start,
                      "stats": [float(s) for s in ev.stats]}))


if __name__ == "__main__":
    main()
