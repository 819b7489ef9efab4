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
import subprocess
import sys

try:
    import safetensors  # noqa: F401
    import torch
    import torchvision  # noqa: F401
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

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


def read_safetensors(path):
    from safetensors.torch import load_file
    return load_file(path)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


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
