#!/usr/bin/env python3
"""`largedet export --format torchvision` end to end, for Faster R-CNN, Mask R-CNN and RetinaNet.

usage: export_torchvision_check.py LARGEDET WORK_DIR

For each architecture: the modeling tests' torchvision fixture (a calibrated random R50-FPN model,
its weights converted to ours, its detections on two images) is exported back with the matching
recipe; the torchvision call the exporter prints is run as printed, loads the file with
load_state_dict(strict=True), and must hold the fixture's weights bit for bit and detect what the
fixture detected. (tests/modeling/rcnn_parity_test.cpp checks that our own model detects the same
on these weights and images, so all three agree.) A narrowed model must be refused by key.
"""
import os
import sys

from torch_check import ROOT, read_safetensors, run

import torch

RECIPES = {
    "fasterrcnn": ("configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
                   ["MODEL.ROI_HEADS.NUM_CLASSES=4"]),
    "maskrcnn": ("configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
                 ["MODEL.ROI_HEADS.NUM_CLASSES=4"]),
    # The fixture keeps torchvision's 300 detections per image (detectron2's recipes: 100).
    "retinanet": ("configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml",
                  ["MODEL.RETINANET.NUM_CLASSES=4", "TEST.DETECTIONS_PER_IMAGE=300"]),
}
SIZES = ["INPUT.MIN_SIZE_TEST=256", "INPUT.MAX_SIZE_TEST=400", "MODEL.DEVICE=cpu"]


def check(largedet, work, arch):
    problems = []
    fixture = os.path.join(work, arch)
    code, out = run([sys.executable, os.path.join(ROOT, "tests/modeling/torchvision_fixtures.py"),
                     arch, fixture])
    if code:
        return [f"{arch}: the fixture failed:\n{out}"]
    recipe, overrides = RECIPES[arch]
    exported = os.path.join(work, arch + ".pth")
    code, out = run([largedet, "export", "--format", "torchvision", "--config",
                     os.path.join(ROOT, recipe), "--weights",
                     os.path.join(fixture, "weights.safetensors"), "--output", exported]
                    + overrides + SIZES)
    if code:
        return [f"{arch}: export failed:\n{out}"]
    snippet = out[out.index("import torch, torchvision"):]
    scope = {}
    torch.set_num_threads(1)
    exec(snippet, scope)  # builds the model and loads the file strictly, as printed
    model = scope["model"]
    want = read_safetensors(os.path.join(fixture, "weights.safetensors"))
    got = model.state_dict()
    if set(got) != set(want):
        problems.append(f"{arch}: state_dict keys differ: {sorted(set(got) ^ set(want))[:5]}")
    for k in sorted(set(got) & set(want)):
        if not torch.equal(got[k], want[k].to(got[k].dtype)):
            problems.append(f"{arch}: {k} differs from the fixture's")
    io = read_safetensors(os.path.join(fixture, "io.safetensors"))
    images = [io[f"image.{i}"] for i in range(2)]
    with torch.no_grad():
        dets = model(images)
    for i, d in enumerate(dets):
        for key in ("boxes", "scores", "labels") + (("masks",) if arch == "maskrcnn" else ()):
            ref = io[f"{key}.{i}"]
            if d[key].shape != ref.shape or not torch.allclose(d[key].float(), ref.float(),
                                                                rtol=1e-5, atol=1e-5):
                problems.append(f"{arch}: image {i}: {key} differ from the fixture's detections")
    print(f"{arch}: {len(got)} tensors loaded strictly, {sum(len(d['boxes']) for d in dets)} "
          f"detections as the fixture's" if not problems else f"{arch}: FAILED")
    if arch != "retinanet":
        problems += check_onnx(model, arch, images, work)
    return problems


# ONNX Runtime's convolutions round differently from LibTorch's (the FPN features agree to ~2e-5
# relative); on the fixture's random weights, thousands of near-equal objectness scores turn that
# into different proposals. With the RPN's 5 best proposals per level (far apart in score) the
# rest of the graph is compared: detections scoring >= 0.1, image by image (a batch pads its images
# to a common size, so batched results would differ for that reason alone). Masks are compared by
# the mean difference over each detection's box: the random mask head is rough at the pixel scale,
# and proposals 0.03 px apart sample it differently (measured: 0.001 typical, 0.017 worst; a mask
# of the wrong class differs by ~0.3).
ONNX_TOP_N, ONNX_MIN_SCORE, ONNX_BOX_TOL, ONNX_SCORE_TOL, ONNX_MASK_TOL = 5, 0.1, 0.1, 5e-3, 0.05


def check_onnx(model, arch, images, work):
    """torchvision's route to ONNX from the exported model (docs/modeling.md, "Weights"):
    torch.onnx.export, then onnxruntime, against torchvision's own detections."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as e:
        print(f"{arch}: ONNX not checked ({e})")
        return []
    import warnings
    model.rpn._pre_nms_top_n["testing"] = ONNX_TOP_N
    model.rpn._post_nms_top_n["testing"] = ONNX_TOP_N
    path = os.path.join(work, arch + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python scalars
        torch.onnx.export(model, ([images[0]],), path, opset_version=17, dynamo=False,
                          input_names=["image"], dynamic_axes={"image": [1, 2]})
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    problems, worst_box, worst_score, worst_mask, compared = [], 0.0, 0.0, 0.0, 0
    for i, image in enumerate(images):
        out = [torch.from_numpy(x) for x in session.run(None, {"image": image.numpy()})]
        with torch.no_grad():
            want = model([image])[0]
        keep = want["scores"] >= ONNX_MIN_SCORE
        n = int(keep.sum())
        boxes, labels, scores = out[0][:n], out[1][:n], out[2][:n]
        if (len(out[0]) < n or not torch.equal(labels, want["labels"][:n])):
            problems.append(f"{arch} ONNX: image {i}: labels {labels.tolist()} differ from "
                            f"torchvision's {want['labels'][:n].tolist()}")
            continue
        compared += n
        worst_box = max(worst_box, (boxes - want["boxes"][:n]).abs().max().item() if n else 0)
        worst_score = max(worst_score, (scores - want["scores"][:n]).abs().max().item() if n else 0)
        if arch == "maskrcnn" and n:
            for k in range(n):
                x0, y0, x1, y1 = want["boxes"][k].floor().int().tolist()
                d = (out[3][k, 0, y0:y1 + 1, x0:x1 + 1] - want["masks"][k, 0, y0:y1 + 1, x0:x1 + 1])
                worst_mask = max(worst_mask, d.abs().mean().item())
    if worst_box > ONNX_BOX_TOL or worst_score > ONNX_SCORE_TOL or worst_mask > ONNX_MASK_TOL:
        problems.append(f"{arch} ONNX: boxes off by {worst_box:.3g} px (<= {ONNX_BOX_TOL}), "
                        f"scores by {worst_score:.3g} (<= {ONNX_SCORE_TOL}), masks by "
                        f"{worst_mask:.3g} on average (<= {ONNX_MASK_TOL})")
    print(f"{arch}: onnxruntime detects as torchvision: {compared} detections, boxes within "
          f"{worst_box:.2g} px, scores within {worst_score:.2g}"
          + (f", masks within {worst_mask:.2g} on average" if arch == "maskrcnn" else ""))
    return problems


def main():
    largedet, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    problems = []
    for arch in RECIPES:
        problems += check(largedet, work, arch)
    # What torchvision cannot build is refused by key.
    code, out = run([largedet, "export", "--config", os.path.join(ROOT, "configs/synthetic/demo.yaml"),
                     "--weights", os.path.join(work, "fasterrcnn", "weights.safetensors"),
                     "--output", os.path.join(work, "refused.pth")])
    if code == 0 or "MODEL.RESNETS.DEPTH is '18'" not in out:
        problems.append(f"a ResNet-18 x0.25 recipe was not refused by key:\n{out}")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
