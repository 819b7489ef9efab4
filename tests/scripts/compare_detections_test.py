"""scripts/compare_detections.py on hand-made detection files: its RLE decoding and mask IoU
against values pycocotools gave for the same strings, and its verdicts: identical files pass
(--exact too), small differences pass the tolerances but not --exact, and moved boxes, changed
scores, lost detections, swapped masks and empty or broken files fail.
usage: python3 compare_detections_test.py SOURCE_DIR WORK_DIR"""
import copy
import json
import os
import subprocess
import sys

SRC, WORK = sys.argv[1], sys.argv[2]
SCRIPT = os.path.join(SRC, "scripts", "compare_detections.py")
sys.path.insert(0, os.path.join(SRC, "scripts"))
import compare_detections  # noqa: E402

os.makedirs(WORK, exist_ok=True)
failures = []

# Two overlapping masks of a 192x256 image as `largedet evaluate` wrote them; pycocotools 2.0
# gives areas 1050 and 1034 and IoU 0.43033631 for them.
MASK_A = {"size": [192, 256], "counts": "Ukm011010332MO0h40UK5OKO40M0O10O110k42TK60H0O010O10O101P5OPKO10O01000O010O301l4b0TKDl4h0000DTKDl4h0000000001OO]OTK3m4a0O00\\OTK4n4>NQOTK:06o49QKZOl4MTKm0m4SOSKm0P51LROTK50?P5:NQORKn0m432ONPOSKo0l43000oNTKg00[O0MlS<"}  # noqa: E501
MASK_B = {"size": [192, 256], "counts": "R\\l01Z50UK0B10O04P5LPK10O001036LJ0101n40UKNN0O010O010O10O0110n4OQK10O10O010O`0m4KSKF0O010O0:m4g0000ZOSK9l4>1YOSK9l4>1O00O11O000000000UOSKc0m48000POSKm0n410RORKO010h0m4WOSKo0m42001BRKHm4FSKm0n4013OPORK<1CO;o4EeS="}  # noqa: E501


def area(seg):
    return sum(e - s for s, e in compare_detections.ones_intervals(
        compare_detections.rle_counts(seg["counts"])))


def check(what, ok):
    if not ok:
        failures.append(what)


for seg, expected in ((MASK_A, 1050), (MASK_B, 1034)):
    runs = compare_detections.rle_counts(seg["counts"])
    check("runs cover the image", sum(runs) == 192 * 256)
    check(f"area {area(seg)} == {expected}", area(seg) == expected)
check("mask IoU as pycocotools",
      abs(compare_detections.mask_iou(MASK_A, MASK_B) - 0.43033631) < 1e-7)
check("mask IoU with itself", compare_detections.mask_iou(MASK_A, MASK_A) == 1.0)
check("uncompressed counts", compare_detections.rle_counts([3, 2, 1]) == [3, 2, 1])

BASE = [
    {"image_id": 1, "category_id": 4, "score": 0.91, "bbox": [159.1, 32.0, 33.5, 34.8],
     "segmentation": MASK_A},
    {"image_id": 1, "category_id": 4, "score": 0.62, "bbox": [10.0, 100.0, 40.0, 30.0],
     "segmentation": MASK_B},
    {"image_id": 2, "category_id": 1, "score": 0.80, "bbox": [50.0, 50.0, 60.0, 60.0],
     "segmentation": MASK_A},
    {"image_id": 2, "category_id": 2, "score": 0.07, "bbox": [0.0, 0.0, 10.0, 10.0],
     "segmentation": MASK_B},
]


def write(name, dets):
    path = os.path.join(WORK, name + ".json")
    with open(path, "w") as f:
        if isinstance(dets, str):
            f.write(dets)
        else:
            json.dump(dets, f)
    return path


def verdict(name, dets, expected, *args):
    """Runs the script on BASE against `dets`; the exit code must be `expected`."""
    out = subprocess.run([sys.executable, SCRIPT, write("base", BASE), write(name, dets), *args],
                         capture_output=True, text=True)
    if out.returncode != expected:
        failures.append(f"{name} {' '.join(args)}: exit {out.returncode}, expected {expected}:\n"
                        f"{out.stdout}{out.stderr}")
    elif expected == 0 and not out.stdout.strip().splitlines()[-1].startswith("figure: "):
        failures.append(f"{name}: the last line is not the figure:\n{out.stdout}")
    return out.stdout


def changed(fn):
    dets = copy.deepcopy(BASE)
    fn(dets)
    return dets


# The same detections, in another order: equal, also for --exact.
verdict("same", list(reversed(BASE)), 0)
out = verdict("same_exact", list(reversed(BASE)), 0, "--exact")
check("identical is said", "figure: identical:" in out)
# Within the tolerances (0.3 px, 0.01 score): passes, but not --exact.
small = changed(lambda d: (d[0]["bbox"].__setitem__(0, 159.4), d[2].__setitem__("score", 0.79)))
verdict("small", small, 0)
verdict("small_exact", small, 1, "--exact")
# A box 3 px off, a score 0.2 off, beyond the default tolerances; --box-tol lets the box pass.
moved = changed(lambda d: d[1]["bbox"].__setitem__(1, 103.0))
out = verdict("moved", moved, 1)
check("the box difference is named", "box coordinates differ by up to 3.000 px" in out)
verdict("moved_tolerated", moved, 0, "--box-tol", "3.5")
verdict("score", changed(lambda d: d[2].__setitem__("score", 0.6)), 1)
# A confident detection lost, one added, a label changed: no partner.
verdict("lost", BASE[1:], 1)
verdict("added", BASE + [dict(BASE[2], image_id=3)], 1)
verdict("label", changed(lambda d: d[0].__setitem__("category_id", 3)), 1)
# A detection below --min-score may come and go (the threshold and per-image limit move it).
verdict("low_score_lost", BASE[:3], 0)
verdict("low_score_lost_exact", BASE[:3], 1, "--exact")
# Another mask for the same box: IoU 0.43 < 0.8.
out = verdict("mask", changed(lambda d: d[0].__setitem__("segmentation", MASK_B)), 1)
check("the mask IoU is named", "a mask IoU is 0.430" in out)
# Nothing to compare, or nothing readable.
verdict("empty", [], 1)
empty = write("empty_a", [])
out = subprocess.run([sys.executable, SCRIPT, empty, empty], capture_output=True, text=True)
check("two empty files fail", out.returncode == 1 and "nothing compared" in out.stdout)
verdict("broken", "[{\"image_id\": 1,", 2)
verdict("not_results", {"images": []}, 2)

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
