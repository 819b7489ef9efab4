"""Writes the OpenImages evaluation vectors in tests/evaluation/data/oid_eval/ and the answers of
the TF Object Detection API's own code for them (an outside oracle for src/evaluation/openimages_*).

usage: (venv from setup_venv.sh)/bin/python tools/oracle/openimages/make_oid_vectors.py [OUT_DIR]
       (default OUT_DIR: tests/evaluation/data/oid_eval in this checkout)

Everything is generated from a fixed seed with numpy's legacy RandomState (its stream is frozen
across numpy versions); the script re-executes itself with PYTHONHASHSEED=0 because the official
expansion iterates Python sets (the order of the copied rows depends on the str hash).

Files (formats of the Open Images Challenge 2019 files):
  hierarchy.json              nested {"LabelName", "Subcategory"} tree under /m/0bl9f (Entity);
                              Tomato has two parents, depth 4, one "Part" list (ignored by the
                              official expansion, which reads only "Subcategory")
  class-descriptions.csv      MID,Name without header (challenge-2019-classes-description-500.csv)
  class_labelmap.pbtxt        the same classes as a StringIntLabelMap, id = line number (1-based),
                              as oid_challenge_evaluation.py's --input_class_labelmap wants
  gt-bbox.csv                 ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,
                              IsTruncated,IsGroupOf,IsDepiction,IsInside
  gt-imagelabels.csv          ImageID,Source,LabelName,Confidence (1 positive, 0 negative)
  gt-bbox_expanded.csv        the two files above after the official
  gt-imagelabels_expanded.csv   oid_hierarchical_labels_expansion.py main() (annotation_type 1 / 2)
  detections-distinct.csv     ImageID,LabelName,Score,XMin,YMin,XMax,YMax; all scores distinct
                              (written with 17 significant digits)
  detections-ties.csv         the same rows with scores rounded to multiples of 0.05 (many ties),
                              plus pairs of equal-score detections of one object
  reference.json              mAP and per-class AP (by MID) of OpenImagesChallengeEvaluator and
                              OpenImagesDetectionEvaluator for every ground truth x detection set

Classes deliberately outside one list or the other: Unicycle is in the hierarchy but not in the
class list (its boxes count for Vehicle after expansion); Lamp is in the class list but not in the
hierarchy (detections only: the official expansion asserts on any annotation outside the tree);
detections also use /m/0bl9f (the root), an unknown MID and Unicycle, none of which are classes.
The official challenge script raises KeyError on any LabelName outside the label map, so before
it runs, rows whose LabelName is not in class-descriptions.csv are dropped from its inputs (ground
truth, image labels and detections). That changes nothing it could compute: such rows name no
class, and a detection only counts for a class of its image's boxes or image-level labels.
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import csv  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from absl import flags  # noqa: E402

from object_detection.dataset_tools import oid_hierarchical_labels_expansion as expansion  # noqa
from object_detection.metrics import io_utils  # noqa: E402
from object_detection.metrics import oid_challenge_evaluation as challenge  # noqa: E402
from object_detection.metrics import oid_challenge_evaluation_utils as challenge_utils  # noqa
from object_detection.utils import label_map_util  # noqa: E402
from object_detection.utils import metrics as od_metrics  # noqa: E402
from object_detection.utils import np_box_list_ops  # noqa: E402
from object_detection.utils import object_detection_evaluation as ode  # noqa: E402

FLAGS = flags.FLAGS
SEED = 20190601
NUM_IMAGES = 40
ROOT = "/m/0bl9f"
TIE_GRID = 20  # tie scores are multiples of 1/20

# ------------------------------------------------------------------------------------------------
# Classes
# ------------------------------------------------------------------------------------------------
NAMES = {
    "/m/0jbk": "Animal", "/m/04rky": "Mammal", "/m/0bt9lr": "Dog", "/m/0pupp1": "Puppy",
    "/m/01yrx": "Cat", "/m/02wbm": "Food", "/m/02xwb": "Fruit", "/m/0f4s2w": "Vegetable",
    "/m/07j87": "Tomato", "/m/014j1m": "Apple", "/m/0fj52s": "Carrot", "/m/07yv9": "Vehicle",
    "/m/0k4j": "Car", "/m/0pg52": "Taxi", "/m/0199g": "Bicycle", "/m/083wq": "Wheel",
    "/m/0unic1": "Unicycle", "/m/01g317": "Person", "/m/04yx4": "Man", "/m/03bt1vf": "Woman",
    "/m/0dtln": "Lamp",
}
M = {name: mid for mid, name in NAMES.items()}
UNKNOWN_MID = "/m/0zzzzz"


def node(name, *children, part=None):
    d = {"LabelName": M[name]}
    if children:
        d["Subcategory"] = list(children)
    if part:
        d["Part"] = [{"LabelName": M[p]} for p in part]
    return d


HIERARCHY = {
    "LabelName": ROOT,
    "Subcategory": [
        node("Animal", node("Mammal", node("Dog", node("Puppy")), node("Cat"))),
        node("Food",
             node("Fruit", node("Tomato"), node("Apple")),
             node("Vegetable", node("Tomato"), node("Carrot"))),
        node("Vehicle",
             node("Car", node("Taxi"), part=["Wheel"]),
             node("Bicycle", node("Wheel")),
             node("Unicycle")),
        node("Person", node("Man"), node("Woman")),
    ],
}
# The class list (ids 1.. in this order): every hierarchy class but the root and Unicycle, plus
# Lamp, in no particular order.
CLASS_LIST = [M[n] for n in [
    "Tomato", "Dog", "Car", "Person", "Apple", "Animal", "Lamp", "Mammal", "Cat", "Puppy", "Food",
    "Fruit", "Vegetable", "Carrot", "Vehicle", "Taxi", "Bicycle", "Wheel", "Man", "Woman"]]


def tree_relations(h):
    """ancestors / descendants per class from "Subcategory" only, root excluded (sorted lists)."""
    anc, desc = {}, {}

    def visit(n, path):  # path: the classes above n, root excluded; None for the root itself
        label = n["LabelName"]
        if path is not None:
            anc.setdefault(label, set()).update(path)
            desc.setdefault(label, set())
            for a in path:
                desc[a].add(label)
        for c in n.get("Subcategory", []):
            visit(c, [] if path is None else path + [label])

    visit(h, None)
    return ({k: sorted(v) for k, v in anc.items()}, {k: sorted(v) for k, v in desc.items()})


ANCESTORS, DESCENDANTS = tree_relations(HIERARCHY)

# ------------------------------------------------------------------------------------------------
# Data generation
# ------------------------------------------------------------------------------------------------
BOX_POOL = [M[n] for n in ["Dog", "Puppy", "Cat", "Mammal", "Tomato", "Apple", "Carrot", "Car",
                           "Taxi", "Bicycle", "Wheel", "Unicycle", "Man", "Woman", "Person",
                           "Fruit"]]
BOX_WEIGHTS = np.array([3, 2, 3, 1, 3, 2, 2, 3, 2, 2, 2, 1, 3, 3, 2, 1], dtype=float)
LABEL_POOL = sorted(ANCESTORS)  # any class of the tree may carry an image-level label
NESTED_PARENT = {M["Puppy"]: M["Dog"], M["Taxi"]: M["Car"], M["Man"]: M["Person"],
                 M["Tomato"]: M["Fruit"]}


class Gen:
    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def rand(self):
        return float(self.rng.random_sample())

    def uniform(self, a, b):
        return float(self.rng.uniform(a, b))

    def randint(self, a, b):  # inclusive
        return int(self.rng.randint(a, b + 1))

    def choice(self, seq, p=None):
        return seq[int(self.rng.choice(len(seq), p=p))]

    def image_id(self):
        while True:
            s = "".join("0123456789abcdef"[int(i)] for i in self.rng.randint(0, 16, 16))
            if any(c in "abcdf" for c in s):  # never all digits (pandas would read a number)
                return s


def r6(v):
    return float("%.6f" % min(max(v, 0.0), 1.0))


def rand_box(g, lo=0.06, hi=0.55):
    w, h = g.uniform(lo, hi), g.uniform(lo, hi)
    x0, y0 = g.uniform(0, 1 - w), g.uniform(0, 1 - h)
    return (r6(x0), r6(x0 + w), r6(y0), r6(y0 + h))  # XMin, XMax, YMin, YMax


def jitter_box(g, box, amount):
    x0, x1, y0, y1 = box
    w, h = x1 - x0, y1 - y0
    nx0 = x0 + g.rng.normal(0, amount) * w
    nx1 = x1 + g.rng.normal(0, amount) * w
    ny0 = y0 + g.rng.normal(0, amount) * h
    ny1 = y1 + g.rng.normal(0, amount) * h
    nx0, nx1 = sorted((r6(nx0), r6(nx1)))
    ny0, ny1 = sorted((r6(ny0), r6(ny1)))
    if nx1 - nx0 < 0.01:
        nx1 = r6(nx0 + 0.01)
    if ny1 - ny0 < 0.01:
        ny1 = r6(ny0 + 0.01)
    return (nx0, nx1, ny0, ny1)


def inner_box(g, box):
    """A box mostly inside `box` (a member of a group-of box)."""
    x0, x1, y0, y1 = box
    w, h = (x1 - x0) * g.uniform(0.15, 0.5), (y1 - y0) * g.uniform(0.15, 0.5)
    bx0 = g.uniform(x0, x1 - w)
    by0 = g.uniform(y0, y1 - h)
    return (r6(bx0), r6(bx0 + w), r6(by0), r6(by0 + h))


def enclosing_box(boxes, margin=0.02):
    return (r6(min(b[0] for b in boxes) - margin), r6(max(b[1] for b in boxes) + margin),
            r6(min(b[2] for b in boxes) - margin), r6(max(b[3] for b in boxes) + margin))


def expanded_classes(pos, neg):
    out = set()
    for c in pos:
        out.add(c)
        out.update(ANCESTORS.get(c, []))
    for c in neg:
        out.add(c)
        out.update(DESCENDANTS.get(c, []))
    return out


def generate():
    g = Gen(SEED)
    ids = []
    while len(ids) < NUM_IMAGES + 1:
        i = g.image_id()
        if i not in ids:
            ids.append(i)
    orphan = ids.pop()  # detections only: in no ground-truth file
    ids.sort()
    labels_only = set(ids[5::10])  # 4 images with image-level labels and no boxes
    conflict_image = ids[7]  # positive Tomato and negative Fruit
    boxes, labels, dets = [], [], []  # dets: [image, label, score, box(XMin,XMax,YMin,YMax)]
    groupof_without_dets = []

    def det(image, label, box, score=None, tag=""):
        dets.append({"image": image, "label": label, "box": box,
                     "score": g.uniform(0.02, 1.0) if score is None else score, "tag": tag})

    for image in ids:
        img_boxes = []  # (label, box, group_of)
        if image not in labels_only:
            k = g.randint(1, 3)
            p = BOX_WEIGHTS / BOX_WEIGHTS.sum()
            classes = []
            while len(classes) < k:
                c = g.choice(BOX_POOL, p)
                if c not in classes:
                    classes.append(c)
            for c in classes:
                n = g.randint(1, 3)
                for _ in range(n):
                    group = c == M["Carrot"] or g.rand() < 0.12
                    b = rand_box(g, 0.25, 0.7) if group else rand_box(g)
                    img_boxes.append((c, b, group))
                if c in NESTED_PARENT and g.rand() < 0.35:
                    # the same object annotated on the leaf and on its parent class
                    leaf = [b for (l, b, grp) in img_boxes if l == c and not grp]
                    if leaf:
                        img_boxes.append((NESTED_PARENT[c], jitter_box(g, leaf[0], 0.03), False))
                if c == M["Man"] and g.rand() < 0.5:
                    men = [b for (l, b, grp) in img_boxes if l == c]
                    img_boxes.append((M["Person"], enclosing_box(men), True))
        box_classes = sorted({l for (l, _, _) in img_boxes})
        for (l, b, grp) in img_boxes:
            boxes.append([image, g.choice(["xclick", "activemil"]), l, 1, b[0], b[1], b[2], b[3],
                          int(g.rand() < 0.3), int(g.rand() < 0.2), int(grp),
                          int(g.rand() < 0.05), int(g.rand() < 0.05)])
        # image-level labels
        pos = [c for c in box_classes if g.rand() < 0.85]
        if image in labels_only:
            pos, n = [], g.randint(1, 3)
            while len(pos) < n:
                c = g.choice(LABEL_POOL)
                if c not in pos:
                    pos.append(c)
        if g.rand() < 0.3:
            c = g.choice(LABEL_POOL)
            if c not in box_classes and c not in pos:
                pos.append(c)  # verified present, but no box
        present = expanded_classes(set(box_classes) | set(pos), [])
        neg = []
        for _ in range(g.randint(0, 3)):
            c = g.choice(LABEL_POOL)
            if c not in present and c not in neg and not (set(DESCENDANTS[c]) & present):
                neg.append(c)
        if image == conflict_image:
            pos.append(M["Tomato"])
            neg.append(M["Fruit"])
        for c in pos:
            labels.append([image, g.choice(["verification", "crowdsource-verification"]), c, 1])
        for c in neg:
            labels.append([image, g.choice(["verification", "crowdsource-verification"]), c, 0])
        evaluatable = expanded_classes(set(box_classes) | set(pos), neg)

        # detections
        for (l, b, grp) in img_boxes:
            if grp:
                if g.rand() < 0.7:
                    for _ in range(g.randint(1, 3)):
                        det(image, l, inner_box(g, b), tag="in-group-of")
                else:
                    groupof_without_dets.append((image, l, b))
                continue
            if g.rand() < 0.8:
                det(image, l, jitter_box(g, b, g.uniform(0.0, 0.25)), g.uniform(0.3, 1.0), "tp?")
            if g.rand() < 0.25:
                det(image, l, jitter_box(g, b, g.uniform(0.0, 0.3)), tag="duplicate")
            anc = [a for a in ANCESTORS.get(l, []) if a in CLASS_LIST]
            if anc and g.rand() < 0.45:
                det(image, g.choice(anc), jitter_box(g, b, g.uniform(0.0, 0.15)), tag="parent")
        for _ in range(g.randint(0, 3)):  # false positives of evaluatable classes
            pool = sorted(c for c in evaluatable if c in CLASS_LIST)
            if pool:
                det(image, g.choice(pool), rand_box(g), g.uniform(0.0, 0.7), "fp")
        for _ in range(g.randint(0, 2)):  # classes neither boxed nor verified in the image
            pool = sorted(c for c in CLASS_LIST if c not in evaluatable)
            det(image, g.choice(pool), rand_box(g), tag="unverified")

    # special cases
    some = [i for i in ids if i not in labels_only]
    for i in range(3):
        det(some[3 * i + 1], M["Lamp"], rand_box(g), tag="lamp (class list, no hierarchy)")
    for i in range(2):
        det(some[4 * i + 2], UNKNOWN_MID, rand_box(g), tag="unknown MID")
        det(some[5 * i + 3], ROOT, rand_box(g), tag="root class")
        det(some[6 * i + 4], M["Unicycle"], rand_box(g), tag="hierarchy, not class list")
    for i in range(3):
        det(orphan, g.choice(CLASS_LIST), rand_box(g), tag="image without ground truth")
    gt_nongroup = [(r[0], r[2], (r[4], r[5], r[6], r[7])) for r in boxes
                   if r[10] == 0 and r[2] in CLASS_LIST]
    im, l, b = gt_nongroup[3]
    det(im, l, (b[0], b[0], b[2], b[3]), g.uniform(0.5, 1.0), "degenerate (XMin == XMax)")
    im, l, b = gt_nongroup[11]
    det(im, l, (b[0], b[1], b[3], b[2]), g.uniform(0.5, 1.0), "inverted (YMin > YMax)")
    im, l, b = groupof_without_dets[0]
    det(im, l, inner_box(g, b), 0.0, "score 0 alone in a group-of box")
    # pairs of detections of one object: a poor one listed first, a good one; in the tie set both
    # get the same score
    for k, j in enumerate((5, 17, 29, 41)):
        im, l, b = gt_nongroup[j]
        s = (g.randint(4, 17) + 0.3 + 0.05 * k) / TIE_GRID
        det(im, l, jitter_box(g, b, 0.6), s, "pair: poor")
        det(im, l, jitter_box(g, b, 0.01), s + 1e-9, "pair: good")

    # Scores are written with 17 significant digits, and pandas' default float parser (which the
    # official scripts read with) is off by an ulp for most of them: move those scores
    # by a random millionth until pandas reads back the same double as strtod.
    for _ in range(2000):
        parsed = pd.read_csv(io.StringIO(
            "s\n" + "".join("%.17g\n" % d["score"] for d in dets)))["s"].to_numpy()
        bad = [d for d, v in zip(dets, parsed) if float(v) != d["score"]]
        if not bad:
            break
        for d in bad:
            assert d["score"] != 0.0, d
            d["score"] = min(d["score"] + g.uniform(-1e-6, 1e-6), 1.0)
    else:
        raise AssertionError("pandas keeps misreading scores")
    scores = [d["score"] for d in dets]
    assert len(set(scores)) == len(scores), "scores collide"
    order = g.rng.permutation(len(dets))
    dets = [dets[int(i)] for i in order]
    return {"ids": ids, "orphan": orphan, "labels_only": sorted(labels_only),
            "conflict_image": conflict_image, "boxes": boxes, "labels": labels, "dets": dets}


def tie_score(s):
    return round(s * TIE_GRID) / TIE_GRID


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
BOX_HEADER = ("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
              "IsGroupOf,IsDepiction,IsInside")
LABEL_HEADER = "ImageID,Source,LabelName,Confidence"
DET_HEADER = "ImageID,LabelName,Score,XMin,YMin,XMax,YMax"


def fmt_coord(v):
    return "%.6f" % v


def write_text(path, text):
    with open(path, "w", newline="") as f:
        f.write(text)


def write_inputs(out, data):
    write_text(os.path.join(out, "hierarchy.json"), json.dumps(HIERARCHY, indent=2) + "\n")
    write_text(os.path.join(out, "class-descriptions.csv"),
               "".join("%s,%s\n" % (mid, NAMES[mid]) for mid in CLASS_LIST))
    write_text(os.path.join(out, "class_labelmap.pbtxt"), "".join(
        'item {\n  name: "%s"\n  id: %d\n  display_name: "%s"\n}\n' % (mid, i + 1, NAMES[mid])
        for i, mid in enumerate(CLASS_LIST)))
    lines = [BOX_HEADER]
    for r in data["boxes"]:
        lines.append(",".join([r[0], r[1], r[2], str(r[3])] + [fmt_coord(v) for v in r[4:8]] +
                              [str(v) for v in r[8:]]))
    write_text(os.path.join(out, "gt-bbox.csv"), "\n".join(lines) + "\n")
    lines = [LABEL_HEADER] + [",".join(str(v) for v in r) for r in data["labels"]]
    write_text(os.path.join(out, "gt-imagelabels.csv"), "\n".join(lines) + "\n")
    for name, score_text in (("distinct", lambda s: "%.17g" % s),
                             ("ties", lambda s: repr(tie_score(s)))):
        lines = [DET_HEADER]
        for d in data["dets"]:
            x0, x1, y0, y1 = d["box"]
            lines.append(",".join([d["image"], d["label"], score_text(d["score"]),
                                   fmt_coord(x0), fmt_coord(y0), fmt_coord(x1), fmt_coord(y1)]))
        write_text(os.path.join(out, "detections-%s.csv" % name), "\n".join(lines) + "\n")


def run_official_expansion(hierarchy, src, dst, annotation_type):
    """oid_hierarchical_labels_expansion.py's main(), unchanged, through its absl flags."""
    FLAGS(["oid_hierarchical_labels_expansion", "--json_hierarchy_file=" + hierarchy,
           "--input_annotations=" + src, "--output_annotations=" + dst,
           "--annotation_type=%d" % annotation_type])
    rc = expansion.main([])
    assert rc is None, rc


def check_parsing(path, columns):
    """pandas (what the official scripts read with) must see the same doubles as strtod."""
    df = pd.read_csv(path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for col in columns:
        a = df[col].to_numpy().astype(float)
        b = np.array([float(r[col]) for r in rows])
        assert a.tobytes() == b.tobytes(), "pandas parses %s:%s differently" % (path, col)
    assert df["ImageID"].map(type).eq(str).all(), path


# ------------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------------
def filter_to_class_list(src, dst, class_ids):
    with open(src) as f:
        header = f.readline()
        col = header.strip().split(",").index("LabelName")
        kept = [line for line in f if line.split(",")[col] in class_ids]
    write_text(dst, header + "".join(kept))
    return kept


class _NumpyWithArgsort(types.ModuleType):
    """numpy, except for argsort: lets a tie policy replace the TF code's np.argsort."""

    def __init__(self, argsort):
        super().__init__("numpy")
        self.argsort = argsort

    def __getattr__(self, name):
        return getattr(np, name)


def _argsort_ties_first_in(x):
    # np.argsort(x)[::-1] then lists equal values in input order
    x = np.asarray(x)
    return (len(x) - 1 - np.argsort(x[::-1], kind="stable"))


def _argsort_ties_last_in(x):
    # np.argsort(x)[::-1] then lists equal values in reverse input order
    return np.argsort(np.asarray(x), kind="stable")


TIE_POLICIES = {"official": None, "stable_input_order": _argsort_ties_first_in,
                "stable_reverse_input_order": _argsort_ties_last_in}


@contextlib.contextmanager
def tie_policy(name):
    fn = TIE_POLICIES[name]
    saved = (od_metrics.np, np_box_list_ops.np)
    if fn is not None:
        od_metrics.np = np_box_list_ops.np = _NumpyWithArgsort(fn)
    try:
        yield
    finally:
        od_metrics.np, np_box_list_ops.np = saved


def _num(v):
    v = float(v)
    return None if math.isnan(v) else v


def summarize(metrics, evaluator, prefix, class_ids):
    map_key = prefix + "_Precision/mAP@0.5IOU"
    per_class = {}
    for mid in class_ids:
        per_class[mid] = _num(metrics[prefix + "_PerformanceByCategory/AP@0.5IOU/" + mid])
    e = evaluator._evaluation
    counts = {}
    for i, mid in enumerate(class_ids):
        n_scored = int(sum(len(s) for s in e.scores_per_class[i]))
        sum_tp = float(sum(float(np.sum(t)) for t in e.tp_fp_labels_per_class[i]))
        counts[mid] = {"num_gt": float(e.num_gt_instances_per_class[i]),
                       "num_scored_detections": n_scored, "sum_tp": sum_tp}
    assert set(metrics) == {map_key} | {prefix + "_PerformanceByCategory/AP@0.5IOU/" + m
                                         for m in class_ids}, sorted(metrics)
    return {"mAP": _num(metrics[map_key]), "per_class_ap": per_class, "counts": counts}


def run_challenge(tmp, boxes, labels, dets, labelmap, class_ids):
    """oid_challenge_evaluation.py's main(), unchanged (flags as on its command line); the metrics
    dict it writes with io_utils.write_csv and the evaluator it built are captured."""
    captured = {}
    fboxes, flabels, fdets = (os.path.join(tmp, n) for n in ("b.csv", "l.csv", "d.csv"))
    filter_to_class_list(boxes, fboxes, class_ids)
    filter_to_class_list(labels, flabels, class_ids)
    filter_to_class_list(dets, fdets, class_ids)
    out = os.path.join(tmp, "metrics.csv")
    FLAGS(["oid_challenge_evaluation", "--input_annotations_boxes=" + fboxes,
           "--input_annotations_labels=" + flabels, "--input_predictions=" + fdets,
           "--input_class_labelmap=" + labelmap, "--output_metrics=" + out])
    assert "evaluate" not in vars(ode.OpenImagesChallengeEvaluator)
    write_csv, evaluate = io_utils.write_csv, ode.OpenImagesChallengeEvaluator.evaluate

    def capture_write(fid, metrics):
        captured["metrics"] = dict(metrics)
        write_csv(fid, metrics)

    def capture_evaluate(self):
        captured["evaluator"] = self
        return evaluate(self)

    io_utils.write_csv = capture_write
    ode.OpenImagesChallengeEvaluator.evaluate = capture_evaluate
    try:
        challenge.main([])
    finally:
        io_utils.write_csv = write_csv
        del ode.OpenImagesChallengeEvaluator.evaluate  # back to the inherited method
    return summarize(captured["metrics"], captured["evaluator"], "OpenImagesDetectionChallenge",
                     class_ids)


def run_v2(tmp, boxes, labels, dets, labelmap, class_ids):
    """OpenImagesDetectionEvaluator ('oid_V2_detection_metrics' in eval_util, default options:
    group_of_weight 0, no image-level labels) on the same per-image dictionaries the challenge
    script builds; categories from label_map_util as the TF API's eval does (names = MIDs)."""
    fboxes, flabels, fdets = (os.path.join(tmp, n) for n in ("b.csv", "l.csv", "d.csv"))
    filter_to_class_list(boxes, fboxes, class_ids)
    filter_to_class_list(labels, flabels, class_ids)
    filter_to_class_list(dets, fdets, class_ids)
    categories = label_map_util.create_categories_from_labelmap(labelmap, use_display_name=False)
    class_label_map = {c["name"]: c["id"] for c in categories}
    evaluator = ode.OpenImagesDetectionEvaluator(categories)
    all_boxes = pd.read_csv(fboxes)
    all_labels = pd.read_csv(flabels)
    all_labels.rename(columns={"Confidence": "ConfidenceImageLabel"}, inplace=True)
    all_annotations = pd.concat([all_boxes, all_labels])
    all_predictions = pd.read_csv(fdets)
    for image_id, image_groundtruth in all_annotations.groupby("ImageID"):
        evaluator.add_single_ground_truth_image_info(
            image_id, challenge_utils.build_groundtruth_dictionary(image_groundtruth,
                                                                   class_label_map))
        evaluator.add_single_detected_image_info(
            image_id, challenge_utils.build_predictions_dictionary(
                all_predictions.loc[all_predictions["ImageID"] == image_id], class_label_map))
    metrics = evaluator.evaluate()
    return summarize(metrics, evaluator, "OpenImagesV2", class_ids)


def expect_failure(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - recording what the official code raises
        return "%s (%s)" % (type(e).__name__, str(e)[:200] or "bare assert")
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = (sys.argv[1] if len(sys.argv) > 1 else
           os.path.join(here, "..", "..", "..", "tests", "evaluation", "data", "oid_eval"))
    out = os.path.normpath(out)
    os.makedirs(out, exist_ok=True)
    logging.getLogger().setLevel(logging.ERROR)
    warnings.simplefilter("ignore", DeprecationWarning)  # np.float in object_detection/utils
    warnings.simplefilter("ignore", RuntimeWarning)  # CorLoc 0/0 for classes without boxes

    data = generate()
    write_inputs(out, data)
    p = lambda name: os.path.join(out, name)  # noqa: E731
    run_official_expansion(p("hierarchy.json"), p("gt-bbox.csv"), p("gt-bbox_expanded.csv"), 1)
    run_official_expansion(p("hierarchy.json"), p("gt-imagelabels.csv"),
                           p("gt-imagelabels_expanded.csv"), 2)
    for name in ("gt-bbox.csv", "gt-bbox_expanded.csv"):
        check_parsing(p(name), ["XMin", "XMax", "YMin", "YMax"])
    for name in ("detections-distinct.csv", "detections-ties.csv"):
        check_parsing(p(name), ["Score", "XMin", "XMax", "YMin", "YMax"])

    class_ids = list(CLASS_LIST)
    gts = {"expanded": (p("gt-bbox_expanded.csv"), p("gt-imagelabels_expanded.csv")),
           "non_expanded": (p("gt-bbox.csv"), p("gt-imagelabels.csv"))}
    det_sets = {"distinct": p("detections-distinct.csv"), "ties": p("detections-ties.csv")}
    runners = {"OpenImagesChallengeEvaluator": run_challenge,
               "OpenImagesDetectionEvaluator": run_v2}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ev, runner in runners.items():
            results[ev] = {}
            for gname, (gb, gl) in gts.items():
                results[ev][gname] = {}
                for dname, dpath in det_sets.items():
                    per_policy = {}
                    for policy in TIE_POLICIES:
                        with tie_policy(policy):
                            per_policy[policy] = runner(tmp, gb, gl, dpath,
                                                        p("class_labelmap.pbtxt"), class_ids)
                    r = per_policy["official"]
                    if dname == "distinct":
                        for policy, other in per_policy.items():
                            assert other == r, (ev, gname, policy)
                    else:
                        r["tie_policies"] = {
                            policy: {"mAP": v["mAP"], "per_class_ap": v["per_class_ap"],
                                     "equals_official": v == r}
                            for policy, v in per_policy.items() if policy != "official"}
                    results[ev][gname][dname] = r
        # The order in which the official expansion writes a row's copies (Python set order)
        # does not matter: with the copies of every row sorted by LabelName (as our expansion
        # writes them) both evaluators give the same numbers. (The order of the rows themselves
        # can: np.argmax picks the first of equally overlapping boxes of a class, e.g. of two
        # group-of boxes that both contain a detection.)
        exp = expansion.OIDHierarchicalLabelsExpansion(HIERARCHY)
        sb, sl = os.path.join(tmp, "sorted_b.csv"), os.path.join(tmp, "sorted_l.csv")
        for src, dst, is_labels in ((p("gt-bbox.csv"), sb, False),
                                    (p("gt-imagelabels.csv"), sl, True)):
            with open(src) as f:
                header = f.readline()
                cols = header.strip().split(",")
                li = cols.index("LabelName")
                rows = []
                for line in f:
                    if is_labels:
                        res = exp.expand_labels_from_csv(line, li, cols.index("Confidence"))
                    else:
                        res = exp.expand_boxes_or_segments_from_csv(line, li)
                    rows += [res[0]] + sorted(res[1:], key=lambda r: r.split(",")[li])
            write_text(dst, header + "".join(rows))
            with open(dst) as a, open(gts["expanded"][1 if is_labels else 0]) as b:
                assert sorted(a) == sorted(b)  # the same rows as the official main() wrote
        for ev, runner in runners.items():
            r = runner(tmp, sb, sl, det_sets["distinct"], p("class_labelmap.pbtxt"), class_ids)
            assert r == results[ev]["expanded"]["distinct"], ev

        # what the official code does with labels outside its lists
        unfiltered_challenge = expect_failure(lambda: (
            FLAGS(["x", "--input_annotations_boxes=" + gts["expanded"][0],
                   "--input_annotations_labels=" + gts["expanded"][1],
                   "--input_predictions=" + det_sets["distinct"],
                   "--input_class_labelmap=" + p("class_labelmap.pbtxt"),
                   "--output_metrics=" + os.path.join(tmp, "m.csv")]), challenge.main([])))
        lamp_box = expect_failure(lambda: exp.expand_boxes_or_segments_from_csv(
            "x,xclick,%s,1,0.1,0.2,0.1,0.2,0,0,0,0,0\n" % M["Lamp"], 2))
        root_box = expect_failure(lambda: exp.expand_boxes_or_segments_from_csv(
            "x,xclick,%s,1,0.1,0.2,0.1,0.2,0,0,0,0,0\n" % ROOT, 2))
        lamp_neg = expect_failure(lambda: exp.expand_labels_from_csv(
            "x,verification,%s,0\n" % M["Lamp"], 2, 3))

    def count_rows(name):
        with open(p(name)) as f:
            return sum(1 for _ in f) - 1

    versions = {d: importlib.metadata.version(d) for d in
                ("tf-object-detection-api", "tensorflow-cpu", "numpy", "pandas", "pycocotools",
                 "six", "absl-py", "protobuf")}
    reference = {
        "generator": "tools/oracle/openimages/make_oid_vectors.py (seed %d)" % SEED,
        "oracle": {"python": platform.python_version(), "PYTHONHASHSEED": "0",
                   "packages": versions},
        "classes": [{"id": i + 1, "mid": mid, "name": NAMES[mid]}
                    for i, mid in enumerate(CLASS_LIST)],
        "files": {"hierarchy": "hierarchy.json", "class_descriptions": "class-descriptions.csv",
                  "class_labelmap": "class_labelmap.pbtxt",
                  "non_expanded": {"boxes": "gt-bbox.csv", "image_labels": "gt-imagelabels.csv"},
                  "expanded": {"boxes": "gt-bbox_expanded.csv",
                               "image_labels": "gt-imagelabels_expanded.csv"},
                  "detections": {"distinct": "detections-distinct.csv",
                                 "ties": "detections-ties.csv"}},
        "rows": {n: count_rows(n) for n in (
            "gt-bbox.csv", "gt-bbox_expanded.csv", "gt-imagelabels.csv",
            "gt-imagelabels_expanded.csv", "detections-distinct.csv", "detections-ties.csv")},
        "images": {"with_ground_truth": len(data["ids"]), "labels_only": data["labels_only"],
                   "detections_only (never evaluated)": data["orphan"],
                   "positive Tomato and negative Fruit": data["conflict_image"]},
        "notes": [
            "AP values are Python floats (repr precision); null = NaN (the TF code leaves AP NaN "
            "for a class with no ground-truth instances, num_gt == 0, and mAP is np.nanmean over "
            "the classes of the label map).",
            "metric names: OpenImagesDetectionChallenge_Precision/mAP@0.5IOU and "
            "OpenImagesDetectionChallenge_PerformanceByCategory/AP@0.5IOU/<MID> (challenge); "
            "OpenImagesV2_Precision/mAP@0.5IOU and OpenImagesV2_PerformanceByCategory/"
            "AP@0.5IOU/<MID> (V2). Category names are MIDs (label map 'name').",
            "Inputs to both evaluators: rows whose LabelName is not in class-descriptions.csv "
            "(root, Unicycle, unknown MID) dropped first; the unfiltered official script fails: "
            + str(unfiltered_challenge),
            "Images are those of the ground-truth CSVs (boxes or image-level labels), in "
            "groupby('ImageID') order; detections of other images are never seen.",
            "counts.num_gt: ground-truth instances (group-of boxes weighted by group_of_weight: 1 "
            "challenge, 0 V2); num_scored_detections: entries of the class's precision/recall "
            "list (detections not ignored, plus one entry per group-of box hit with a positive "
            "score); sum_tp: their true-positive weight.",
            "tie_policies (ties set only; for the distinct set every policy gives the official "
            "numbers): the TF code sorts with np.argsort(scores)[::-1] (numpy's default, unstable "
            "introsort) twice: per image and class before matching (np_box_list_ops."
            "sort_by_field via non_max_suppression), and per class over all images in "
            "metrics.compute_precision_recall, whose input is the concatenation, image by image "
            "(ImageID order), of the non-ignored detections in the per-image sorted order "
            "followed by the group-of entries. stable_input_order keeps equal scores in that "
            "input order, stable_reverse_input_order reverses it.",
            "official expansion on annotations outside the tree: Lamp box: %s; root box: %s; "
            "negative Lamp label: %s" % (lamp_box, root_box, lamp_neg),
            "The copies in *_expanded.csv follow the iteration order of Python sets "
            "(PYTHONHASHSEED=0, CPython %s); compare them as multisets." %
            platform.python_version(),
        ],
        "evaluators": {
            "OpenImagesChallengeEvaluator": {
                "as": "object_detection/metrics/oid_challenge_evaluation.py main()",
                "group_of_weight": 1.0, "uses_image_level_labels": True,
                "results": results["OpenImagesChallengeEvaluator"]},
            "OpenImagesDetectionEvaluator": {
                "as": "eval_util 'oid_V2_detection_metrics' with default options",
                "group_of_weight": 0.0, "uses_image_level_labels": False,
                "results": results["OpenImagesDetectionEvaluator"]},
        },
    }
    with open(p("reference.json"), "w") as f:
        json.dump(reference, f, indent=1, allow_nan=False)
        f.write("\n")
    for ev in results:
        for gname in results[ev]:
            for dname, r in results[ev][gname].items():
                print("%-30s %-13s %-9s mAP %r" % (ev, gname, dname, r["mAP"]))
    total = sum(os.path.getsize(p(n)) for n in os.listdir(out))
    print("wrote %s (%d files, %d bytes)" % (out, len(os.listdir(out)), total))


if __name__ == "__main__":
    main()
