"""The TF Object Detection API's side of `largedet bench eval --type oid`: times the official Open
Images Challenge pipeline end to end on the synthetic set that command writes to WORKDIR
(boxes.csv, image_labels.csv, hierarchy.json, detections.csv) and prints one JSON line
{"seconds", "expand_seconds", "read_seconds", "feed_seconds", "evaluate_seconds", "peak_rss_mb",
"mAP"}.

Run it with the TF Object Detection API's venv (tools/oracle/openimages/setup_venv.sh), e.g.
    /work/oid-oracle-venv/bin/python bench/eval_oid_tf.py [WORKDIR]   (default /tmp/oidbench)
It is a manual benchmark, not used by CI.

Steps, as the official scripts do them (single-threaded):
  1. oid_hierarchical_labels_expansion.py main(): OIDHierarchicalLabelsExpansion, row by row,
     boxes (annotation_type 1) and image labels (annotation_type 2); kept in memory here instead
     of written to files.
  2. oid_challenge_evaluation.py main(): pandas.read_csv of both plus the detections, the label
     map ({MID: id}, ids 1..500 for /m/bench0../m/bench499 in that order, as _load_labelmap would
     build it from a pbtxt), then OpenImagesChallengeEvaluator fed image by image in
     groupby('ImageID') order (detections selected with all_predictions.loc[... == image_id]),
     then evaluate().
The process re-executes itself with PYTHONHASHSEED=0: the expansion iterates Python sets, so the
order of the copied rows (and so the exact mAP bits under ties) depends on the str hash.
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402
from object_detection.dataset_tools.oid_hierarchical_labels_expansion import (  # noqa: E402
    OIDHierarchicalLabelsExpansion)
from object_detection.metrics import oid_challenge_evaluation_utils as utils  # noqa: E402
from object_detection.utils import object_detection_evaluation  # noqa: E402

NUM_CLASSES = 500
MAP_KEY = "OpenImagesDetectionChallenge_Precision/mAP@0.5IOU"


def expand(generator, path, labels_file):
    """The body of oid_hierarchical_labels_expansion.main(), writing to a string."""
    out = []
    with open(path, "r") as source:
        header = source.readline()
        out.append(header)
        column_names = header.strip().split(",")
        labelname_column_index = column_names.index("LabelName")
        confidence_column_index = column_names.index("Confidence") if labels_file else -1
        for line in source:
            if labels_file:
                out.extend(generator.expand_labels_from_csv(
                    line, labelname_column_index, confidence_column_index))
            else:
                out.extend(generator.expand_boxes_or_segments_from_csv(
                    line, labelname_column_index))
    return "".join(out)


def main():
    workdir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/oidbench"
    start = time.perf_counter()

    with open(os.path.join(workdir, "hierarchy.json")) as f:
        generator = OIDHierarchicalLabelsExpansion(json.load(f))
    boxes_csv = expand(generator, os.path.join(workdir, "boxes.csv"), False)
    labels_csv = expand(generator, os.path.join(workdir, "image_labels.csv"), True)
    expanded = time.perf_counter()

    all_location_annotations = pd.read_csv(io.StringIO(boxes_csv))
    all_label_annotations = pd.read_csv(io.StringIO(labels_csv))
    del boxes_csv, labels_csv
    all_label_annotations.rename(columns={"Confidence": "ConfidenceImageLabel"}, inplace=True)
    all_annotations = pd.concat([all_location_annotations, all_label_annotations])

    class_label_map = {"/m/bench%d" % i: i + 1 for i in range(NUM_CLASSES)}
    categories = [{"id": i, "name": name} for name, i in class_label_map.items()]
    challenge_evaluator = object_detection_evaluation.OpenImagesChallengeEvaluator(
        categories, evaluate_masks=False)

    all_predictions = pd.read_csv(os.path.join(workdir, "detections.csv"))
    read = time.perf_counter()
    for image_id, image_groundtruth in all_annotations.groupby("ImageID"):
        groundtruth_dictionary = utils.build_groundtruth_dictionary(
            image_groundtruth, class_label_map)
        challenge_evaluator.add_single_ground_truth_image_info(image_id, groundtruth_dictionary)
        prediction_dictionary = utils.build_predictions_dictionary(
            all_predictions.loc[all_predictions["ImageID"] == image_id], class_label_map)
        challenge_evaluator.add_single_detected_image_info(image_id, prediction_dictionary)
    fed = time.perf_counter()

    metrics = challenge_evaluator.evaluate()
    end = time.perf_counter()
    print(json.dumps({
        "seconds": end - start, "expand_seconds": expanded - start,
        "read_seconds": read - expanded, "feed_seconds": fed - read,
        "evaluate_seconds": end - fed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "mAP": float(metrics[MAP_KEY])}))  # json writes repr(float)


if __name__ == "__main__":
    main()
