#!/usr/bin/env python3
"""Compare two COCO results files (`largedet evaluate --config` writes them: --detections) of the same
weights on the same images, e.g. GPU against CPU inference.

Detections are paired per image and category by box IoU (greedy, best IoU first, IoU >= 0.5);
every detection scoring at least --min-score in either file must find its partner. For the pairs
it reports the largest box coordinate difference (pixels, x1 y1 x2 y2), the largest score
difference and the mask IoU (compressed RLE decoded here: json only, no numpy or pycocotools, so
that it runs on any python3). --exact instead demands the same detections with the same numbers,
as two runs on one device must give.

Exits 0 when within the tolerances, 1 when not, 2 on unreadable input. The last line printed starts
with "figure:" and is the one-line result scripts/gpu_check.sh puts in its summary.
"""
import argparse
import json
import sys
from collections import defaultdict


def rle_counts(counts):
    """pycocotools' rleFrString: the compressed string (LEB128-like, 6 bits per character, each
    run after the second stored as the difference to the run two before) to run lengths."""
    if isinstance(counts, list):
        return counts
    runs = []
    p = 0
    while p < len(counts):
        x = 0
        k = 0
        more = True
        while more:
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def ones_intervals(runs):
    """[start, end) intervals of the foreground: runs alternate background, foreground, ..."""
    out = []
    pos = 0
    for i, n in enumerate(runs):
        if i % 2 == 1 and n > 0:
            out.append((pos, pos + n))
        pos += n
    return out


def mask_iou(a, b):
    """IoU of two RLE segmentations of the same image size; None when either is missing."""
    if a is None or b is None:
        return None
    if list(a["size"]) != list(b["size"]):
        return 0.0
    ia = ones_intervals(rle_counts(a["counts"]))
    ib = ones_intervals(rle_counts(b["counts"]))
    area_a = sum(e - s for s, e in ia)
    area_b = sum(e - s for s, e in ib)
    inter = 0
    i = j = 0
    while i < len(ia) and j < len(ib):
        lo = max(ia[i][0], ib[j][0])
        hi = min(ia[i][1], ib[j][1])
        if hi > lo:
            inter += hi - lo
        if ia[i][1] < ib[j][1]:
            i += 1
        else:
            j += 1
    union = area_a + area_b - inter
    return 1.0 if union == 0 else inter / union


def corners(det):
    x, y, w, h = det["bbox"]
    return (x, y, x + w, y + h)


def box_iou(a, b):
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def load(path):
    try:
        with open(path) as f:
            dets = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}")
        sys.exit(2)
    if not isinstance(dets, list) or any(
        not isinstance(d, dict) or not {"image_id", "category_id", "score", "bbox"} <= d.keys()
        for d in dets
    ):
        print(f"{path} is not a COCO results list (image_id, category_id, score, bbox)")
        sys.exit(2)
    return dets


def canonical(d):
    seg = d.get("segmentation")
    return (
        d["image_id"],
        d["category_id"],
        d["score"],
        tuple(d["bbox"]),
        json.dumps(seg, sort_keys=True) if seg is not None else "",
    )


def compare_exact(a, b, name_a, name_b):
    """Same detections, same numbers (order aside). Returns a list of problems."""
    problems = []
    ca = sorted(map(canonical, a))
    cb = sorted(map(canonical, b))
    if len(ca) != len(cb):
        problems.append(f"{len(ca)} detections in {name_a} but {len(cb)} in {name_b}")
    for k, (x, y) in enumerate(zip(ca, cb)):
        if x != y:
            problems.append(
                f"first difference at sorted detection {k}: image {x[0]} category {x[1]} "
                f"score {x[2]} bbox {list(x[3])} vs image {y[0]} category {y[1]} score {y[2]} "
                f"bbox {list(y[3])}" + (" (masks differ)" if x[:4] == y[:4] else "")
            )
            break
    return problems


def match(a, b, min_score):
    """Greedy pairs (index in a, index in b) by IoU, per image and category, IoU >= 0.5, where
    one of the two scores reaches min_score."""
    by_key = defaultdict(lambda: ([], []))
    for i, d in enumerate(a):
        by_key[(d["image_id"], d["category_id"])][0].append(i)
    for j, d in enumerate(b):
        by_key[(d["image_id"], d["category_id"])][1].append(j)
    pairs = []
    for ia, ib in by_key.values():
        candidates = []
        for i in ia:
            for j in ib:
                if max(a[i]["score"], b[j]["score"]) < min_score:
                    continue
                iou = box_iou(corners(a[i]), corners(b[j]))
                if iou >= 0.5:
                    candidates.append((-iou, -max(a[i]["score"], b[j]["score"]), i, j))
        candidates.sort()
        used_a, used_b = set(), set()
        for _, _, i, j in candidates:
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="reference detections (e.g. the CPU's), COCO results JSON")
    p.add_argument("b", help="detections to check (e.g. the GPU's)")
    p.add_argument("--min-score", type=float, default=0.3,
                   help="detections scoring at least this must be paired (default 0.3: below, "
                        "a small score change moves a detection across the test threshold or "
                        "the per-image limit)")
    p.add_argument("--box-tol", type=float, default=2.0,
                   help="largest allowed box coordinate difference in pixels (default 2.0)")
    p.add_argument("--score-tol", type=float, default=0.05,
                   help="largest allowed score difference (default 0.05)")
    p.add_argument("--mask-iou", type=float, default=0.8,
                   help="smallest allowed mask IoU of a pair (default 0.8)")
    p.add_argument("--exact", action="store_true",
                   help="demand identical detections (two runs on the same device)")
    args = p.parse_args()

    a = load(args.a)
    b = load(args.b)
    problems = compare_exact(a, b, args.a, args.b) if args.exact else []
    min_score = 0.0 if args.exact else args.min_score
    pairs = match(a, b, min_score)
    paired_a = {i for i, _ in pairs}
    paired_b = {j for _, j in pairs}
    confident_a = [i for i, d in enumerate(a) if d["score"] >= min_score]
    confident_b = [j for j, d in enumerate(b) if d["score"] >= min_score]
    # (--exact has compared everything already; greedy pairing of exact duplicates could leave
    # a false "no partner".)
    for name, dets, confident, paired in () if args.exact else (
        (args.a, a, confident_a, paired_a),
        (args.b, b, confident_b, paired_b),
    ):
        lost = [i for i in confident if i not in paired]
        if lost:
            d = dets[lost[0]]
            problems.append(
                f"{len(lost)} detection(s) scoring >= {min_score:g} in {name} have no partner, "
                f"e.g. image {d['image_id']} category {d['category_id']} score {d['score']:.4f} "
                f"bbox {[round(v, 2) for v in d['bbox']]}"
            )
    if not a and not b:
        problems.append("both files are empty: nothing compared")
    elif not confident_a and not confident_b:
        problems.append(f"no detection scores >= {min_score:g} in either file: nothing compared")

    box_diff = score_diff = 0.0
    worst_box = None
    ious = []
    for i, j in pairs:
        diff = max(abs(x - y) for x, y in zip(corners(a[i]), corners(b[j])))
        if diff > box_diff:
            box_diff, worst_box = diff, (i, j)
        score_diff = max(score_diff, abs(a[i]["score"] - b[j]["score"]))
        iou = mask_iou(a[i].get("segmentation"), b[j].get("segmentation"))
        if iou is not None:
            ious.append(iou)
    if not args.exact:
        if box_diff > args.box_tol:
            d = a[worst_box[0]]
            problems.append(
                f"box coordinates differ by up to {box_diff:.3f} px (> {args.box_tol:g}), e.g. "
                f"image {d['image_id']} bbox {[round(v, 2) for v in d['bbox']]} vs "
                f"{[round(v, 2) for v in b[worst_box[1]]['bbox']]}"
            )
        if score_diff > args.score_tol:
            problems.append(f"scores differ by up to {score_diff:.4f} (> {args.score_tol:g})")
        if ious and min(ious) < args.mask_iou:
            problems.append(f"a mask IoU is {min(ious):.3f} (< {args.mask_iou:g})")

    images = len({d["image_id"] for d in a} | {d["image_id"] for d in b})
    print(f"{args.a}: {len(a)} detections, {len(confident_a)} scoring >= {min_score:g}")
    print(f"{args.b}: {len(b)} detections, {len(confident_b)} scoring >= {min_score:g}")
    print(f"{len(pairs)} pairs over {images} image(s); largest box difference {box_diff:.4f} px, "
          f"largest score difference {score_diff:.5f}")
    mask = ""
    if ious:
        mask = f"; mask IoU min {min(ious):.3f} mean {sum(ious) / len(ious):.3f}"
        print(f"mask IoU over {len(ious)} pairs: min {min(ious):.4f}, "
              f"mean {sum(ious) / len(ious):.4f}")
    for problem in problems:
        print("FAIL:", problem)
    verdict = "identical" if args.exact and not problems else ("ok" if not problems else "FAIL")
    print(f"figure: {verdict}: {len(pairs)} pairs, max box diff {box_diff:.3g} px, "
          f"max score diff {score_diff:.3g}{mask}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
