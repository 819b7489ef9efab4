#!/usr/bin/env python3
"""tools/convert_detectron2.py on checkpoints with detectron2's names and shapes.

usage: convert_detectron2_check.py LARGEDET WORK_DIR

The Mask R-CNN parity fixture (tests/modeling/torchvision_fixtures.py: a calibrated random R50-FPN,
its detections on two images) is written as detectron2 would hold it, by this file's own table of
detectron2's module names (detectron2/modeling: ResNet's stem/resK/shortcut/convK.norm, FPN's
fpn_lateralK/fpn_outputK, StandardRPNHead, FastRCNNConvFCHead's fcK, FastRCNNOutputLayers with the
background class last and no background regression, MaskRCNNConvUpsampleHead's mask_fcnK / deconv /
predictor without a background channel) and a BGR stem, as a model-zoo .pkl of numpy arrays and as
a trainer's .pth. Converted back, every tensor must equal the fixture's (the background rows that
detectron2 lacks are zeros), the printed keys must name the fixture's RGB mean and std, torchvision
must detect with it what the fixture detected, and `largedet infer` must load it with those keys.
An MSRA ImageNet ResNet in Caffe2's names converts into the same backbone; what does not convert
(RetinaNet, class-agnostic heads, unknown names, a pickle that runs code, a directory) is refused.
"""
import json
import os
import pickle
import re
import shlex
import sys

from torch_check import ROOT, read_safetensors as read, run

import numpy
import torch
import torchvision

CONVERTER = os.path.join(ROOT, "tools", "convert_detectron2.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "modeling"))
TV_MEAN = [123.675, 116.28, 103.53]  # torchvision's ImageNet statistics x 255, RGB
TV_STD = [58.395, 57.12, 57.375]


def detectron2_name(name):
    """A torchvision (LargeDet) Mask R-CNN R50-FPN name -> detectron2's."""
    rules = [
        (r"backbone\.body\.conv1\.weight", "backbone.bottom_up.stem.conv1.weight"),
        (r"backbone\.body\.bn1\.(.+)", r"backbone.bottom_up.stem.conv1.norm.\1"),
        (r"backbone\.body\.layer(\d)\.(\d+)\.conv(\d)\.weight",
         lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.weight"),
        (r"backbone\.body\.layer(\d)\.(\d+)\.bn(\d)\.(.+)",
         lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.{m[4]}"),
        (r"backbone\.body\.layer(\d)\.(\d+)\.downsample\.0\.weight",
         lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.weight"),
        (r"backbone\.body\.layer(\d)\.(\d+)\.downsample\.1\.(.+)",
         lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.norm.{m[3]}"),
        (r"backbone\.fpn\.inner_blocks\.(\d)\.0\.(.+)",
         lambda m: f"backbone.fpn_lateral{int(m[1]) + 2}.{m[2]}"),
        (r"backbone\.fpn\.layer_blocks\.(\d)\.0\.(.+)",
         lambda m: f"backbone.fpn_output{int(m[1]) + 2}.{m[2]}"),
        (r"rpn\.head\.conv\.0\.0\.(.+)", r"proposal_generator.rpn_head.conv.\1"),
        (r"rpn\.head\.cls_logits\.(.+)", r"proposal_generator.rpn_head.objectness_logits.\1"),
        (r"rpn\.head\.bbox_pred\.(.+)", r"proposal_generator.rpn_head.anchor_deltas.\1"),
        (r"roi_heads\.box_head\.fc6\.(.+)", r"roi_heads.box_head.fc1.\1"),
        (r"roi_heads\.box_head\.fc7\.(.+)", r"roi_heads.box_head.fc2.\1"),
        (r"roi_heads\.box_predictor\.(.+)", r"roi_heads.box_predictor.\1"),
        (r"roi_heads\.mask_head\.(\d)\.0\.(.+)",
         lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.{m[2]}"),
        (r"roi_heads\.mask_predictor\.conv5_mask\.(.+)", r"roi_heads.mask_head.deconv.\1"),
        (r"roi_heads\.mask_predictor\.mask_fcn_logits\.(.+)", r"roi_heads.mask_head.predictor.\1"),
    ]
    for pattern, repl in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    raise KeyError(name)


def as_detectron2(tv):
    """The fixture's state as detectron2 holds it: its names, background last in the classifier,
    no background rows in the box and mask predictors, a stem that reads BGR."""
    d2 = {}
    for k, v in tv.items():
        if k.endswith("cls_score.weight") or k.endswith("cls_score.bias"):
            v = torch.cat([v[1:], v[:1]])
        elif ".box_predictor.bbox_pred." in k:
            v = v[4:]
        elif ".mask_fcn_logits." in k:
            v = v[1:]
        elif k == "backbone.body.conv1.weight":
            v = v.flip(1)
        d2[detectron2_name(k)] = v
    return d2


def caffe2_backbone(tv):
    """The fixture's ResNet as an MSRA ImageNet .pkl holds it: Caffe2 names, BN folded into a
    scale and a bias, a classifier, momentum blobs, under "blobs"."""
    blobs, eps = {}, 1e-5
    for k, v in tv.items():
        m = re.fullmatch(
            r"backbone\.body\.(?:layer(\d)\.(\d+)\.)?(conv|bn|downsample\.)(\d)\.?(\w+)", k)
        if not m:
            continue
        layer, block, kind, i, tensor = m.groups()
        if layer is None:
            base = "conv1" if kind == "conv" else "res_conv1"
        else:
            branch = "branch1" if kind == "downsample." else "branch2" + "abc"[int(i) - 1]
            base = f"res{int(layer) + 1}_{block}_{branch}"
        if kind == "conv" or (kind == "downsample." and i == "0"):
            blobs[f"{base}_w"] = (v.flip(1) if k == "backbone.body.conv1.weight" else v).numpy()
            blobs[f"{base}_w_momentum"] = numpy.zeros(1, numpy.float32)
        elif tensor == "weight":
            prefix = k[: -len("weight")]
            scale = v / torch.sqrt(tv[prefix + "running_var"] + eps)
            shift = tv[prefix + "bias"] - tv[prefix + "running_mean"] * scale
            blobs[f"{base}_bn_s"], blobs[f"{base}_bn_b"] = scale.numpy(), shift.numpy()
    blobs["pred_w"] = numpy.zeros((1000, 2048), numpy.float32)
    blobs["pred_b"] = numpy.zeros(1000, numpy.float32)
    return {"blobs": blobs}


def convert(src, dst, *flags):
    return run([sys.executable, CONVERTER, src, dst, *flags])


def save_pkl(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['MARKER']}",))


def main():
    largedet, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    problems = []
    fixture = os.path.join(work, "maskrcnn")
    code, out = run([sys.executable, os.path.join(ROOT, "tests/modeling/torchvision_fixtures.py"),
                     "maskrcnn", fixture])
    if code:
        print(f"FAIL: the fixture failed:\n{out}")
        return 1
    tv = read(os.path.join(fixture, "weights.safetensors"))
    io = read(os.path.join(fixture, "io.safetensors"))
    d2 = as_detectron2(tv)
    pkl = os.path.join(work, "model_final.pkl")
    save_pkl({"model": {k: v.numpy() for k, v in d2.items()}, "__author__": "test"}, pkl)
    pth = os.path.join(work, "model_final.pth")
    torch.save({"model": d2, "iteration": 89999}, pth)
    # The fixture's recipe in detectron2's BGR order, the stride in the 3x3 conv (torchvision's).
    flags = ["--pixel-mean", ",".join(map(str, TV_MEAN[::-1])), "--pixel-std",
             ",".join(map(str, TV_STD[::-1])), "--stride-in-1x1", "false"]
    keys = None
    for src in (pkl, pth):
        dst = src + ".safetensors"
        code, out = convert(src, dst, *flags)
        if code:
            problems.append(f"{src}: conversion failed:\n{out}")
            continue
        got = read(dst)
        if set(got) != set(tv):
            problems.append(f"{src}: names differ: {sorted(set(got) ^ set(tv))[:6]}")
        for k in sorted(set(got) & set(tv)):
            want = tv[k]
            if ".box_predictor.bbox_pred." in k:
                want = torch.cat([torch.zeros_like(want[:4]), want[4:]])
            elif ".mask_fcn_logits." in k:
                want = torch.cat([torch.zeros_like(want[:1]), want[1:]])
            if not torch.equal(got[k], want):
                problems.append(f"{src}: {k} differs from the fixture's")
        line = [x for x in out.splitlines() if "MODEL.WEIGHTS=" in x]
        keys = shlex.split(line[0])[1:] if line else []
        for want in ["INPUT.FORMAT=RGB", "MODEL.PIXEL_MEAN=[123.675, 116.28, 103.53]",
                     "MODEL.PIXEL_STD=[58.395, 57.12, 57.375]",
                     "MODEL.RESNETS.STRIDE_IN_1X1=false", "MODEL.RESNETS.DEPTH=50",
                     "MODEL.ROI_HEADS.NUM_CLASSES=4", "MODEL.MASK_ON=true"]:
            if want not in keys:
                problems.append(f"{src}: the printed keys lack {want}: {' '.join(keys)}")

    # torchvision detects with the converted weights what the fixture detected.
    from torchvision_fixtures import build
    model = build("maskrcnn").eval()
    model.load_state_dict(read(pkl + ".safetensors"), strict=True)
    with torch.no_grad():
        dets = model([io["image.0"], io["image.1"]])
    for i, d in enumerate(dets):
        for key in ("boxes", "scores", "labels", "masks"):
            ref = io[f"{key}.{i}"]
            if d[key].shape != ref.shape or not torch.allclose(d[key].float(), ref.float(),
                                                                rtol=1e-5, atol=1e-5):
                problems.append(f"image {i}: {key} differ from the fixture's detections")

    # LargeDet loads it strictly with the printed keys.
    image = os.path.join(work, "image.png")
    torchvision.io.write_png((io["image.0"] * 255).round().to(torch.uint8), image)
    names = os.path.join(work, "classes.json")  # infer names the classes from the test set
    with open(names, "w") as f:
        json.dump({"images": [], "annotations": [],
                   "categories": [{"id": i, "name": f"class{i}"} for i in range(1, 5)]}, f)
    recipe = os.path.join(ROOT, "configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml")
    code, out = run([largedet, "infer", "--config", recipe, "--weights", pkl + ".safetensors",
                     "--input", image, "--output", os.path.join(work, "pictures"),
                     "MODEL.DEVICE=cpu", f"DATASETS.TEST_ANNOTATIONS={names}",
                     f"DATASETS.TEST_IMAGES={work}", "INPUT.MIN_SIZE_TEST=256",
                     "INPUT.MAX_SIZE_TEST=400"] + (keys or []))
    if code or not os.path.isfile(os.path.join(work, "pictures", "image.png")):
        problems.append(f"largedet infer with the converted weights failed:\n{out}")

    # An MSRA ImageNet ResNet in Caffe2's names: the same backbone, BN as scale and bias.
    c2 = os.path.join(work, "R-50.pkl")
    save_pkl(caffe2_backbone(tv), c2)
    code, out = convert(c2, c2 + ".safetensors")
    if code:
        problems.append(f"the Caffe2 backbone did not convert:\n{out}")
    else:
        got = read(c2 + ".safetensors")
        body = {k for k in tv if k.startswith("backbone.body.")}
        if set(got) != body:
            problems.append(f"Caffe2 backbone: names differ: {sorted(set(got) ^ body)[:6]}")
        for k in sorted(set(got) & body):
            if k.endswith("running_mean") or k.endswith("running_var"):
                want = torch.zeros_like(tv[k]) if k.endswith("mean") else torch.ones_like(tv[k])
                if not torch.equal(got[k], want):
                    problems.append(f"Caffe2 backbone: {k} is not detectron2's 0 / 1")
            elif k.endswith("weight") and got[k].dim() == 1:  # the effective scale of the norm
                p = k[: -len("weight")]
                want = tv[k] / torch.sqrt(tv[p + "running_var"] + 1e-5)
                if not torch.allclose(got[k], want, rtol=1e-6, atol=0):
                    problems.append(f"Caffe2 backbone: {k}'s scale differs")
            elif k.endswith("bias"):
                p = k[: -len("bias")]
                scale = tv[p + "weight"] / torch.sqrt(tv[p + "running_var"] + 1e-5)
                if not torch.allclose(got[k], tv[k] - tv[p + "running_mean"] * scale, rtol=1e-6,
                                      atol=1e-7):
                    problems.append(f"Caffe2 backbone: {k}'s shift differs")
            elif k.endswith("weight") and not torch.equal(got[k], tv[k]):
                problems.append(f"Caffe2 backbone: {k} differs from the fixture's")
        if "MODEL.RESNETS.STRIDE_IN_1X1=true" not in out:
            problems.append(f"the MSRA default (stride in the 1x1 conv) was not printed:\n{out}")

    # detectron2's 4conv1fc box head with GN (e.g. its GN and cascade-free Mask R-CNN recipes):
    # convK with norm, then fc1, in the shapes detectron2 builds; LargeDet must build the same
    # layers from the printed keys and load them strictly.
    gn = {k: v for k, v in d2.items() if not k.startswith("roi_heads.box_head.")}
    for i in range(1, 5):
        gn[f"roi_heads.box_head.conv{i}.weight"] = torch.randn(256, 256, 3, 3) * 0.01
        gn[f"roi_heads.box_head.conv{i}.norm.weight"] = torch.ones(256)
        gn[f"roi_heads.box_head.conv{i}.norm.bias"] = torch.zeros(256)
    gn["roi_heads.box_head.fc1.weight"] = torch.randn(1024, 256 * 7 * 7) * 0.01
    gn["roi_heads.box_head.fc1.bias"] = torch.zeros(1024)
    gn_pkl = os.path.join(work, "gn_4conv1fc.pkl")
    save_pkl({"model": {k: v.numpy() for k, v in gn.items()}}, gn_pkl)
    code, out = convert(gn_pkl, gn_pkl + ".safetensors", *flags)
    line = [x for x in out.splitlines() if "MODEL.WEIGHTS=" in x]
    gn_keys = shlex.split(line[0])[1:] if line else []
    for want in ["MODEL.ROI_BOX_HEAD.NUM_CONV=4", "MODEL.ROI_BOX_HEAD.NUM_FC=1",
                 "MODEL.ROI_BOX_HEAD.NORM=GN"]:
        if want not in gn_keys:
            problems.append(f"4conv1fc: the printed keys lack {want}:\n{out}")
    code, out = run([largedet, "infer", "--config", recipe, "--weights", gn_pkl + ".safetensors",
                     "--input", image, "--output", os.path.join(work, "pictures_gn"),
                     "MODEL.DEVICE=cpu", f"DATASETS.TEST_ANNOTATIONS={names}",
                     f"DATASETS.TEST_IMAGES={work}", "INPUT.MIN_SIZE_TEST=256",
                     "INPUT.MAX_SIZE_TEST=400"] + gn_keys)
    if code:
        problems.append(f"largedet infer did not load the converted 4conv1fc head:\n{out}")

    # Refused, by reason.
    def refused(name, state, reason, src=None):
        path = src or os.path.join(work, name + ".pkl")
        if src is None:
            save_pkl({"model": {k: v.numpy() for k, v in state.items()}}, path)
        dst = os.path.join(work, name + ".safetensors")
        code, out = convert(path, dst)
        if code != 1 or reason not in out or os.path.exists(dst):
            problems.append(f"{name}: not refused with '{reason}' (exit {code}):\n{out}")

    retinanet = dict(d2, **{"backbone.top_block.p6.weight": torch.zeros(256, 2048, 3, 3)})
    refused("retinanet", retinanet, "RetinaNet")
    agnostic = dict(d2)
    for t in ("weight", "bias"):
        name = f"roi_heads.box_predictor.bbox_pred.{t}"
        agnostic[name] = d2[name][:4]
    refused("agnostic", agnostic, "class-agnostic regression")
    refused("unknown", dict(d2, **{"roi_heads.extra.weight": torch.zeros(1)}),
            "'roi_heads.extra.weight' is not a detectron2")
    marker = os.path.join(work, "code_ran")
    os.environ["MARKER"] = marker
    evil = os.path.join(work, "evil.pkl")
    save_pkl({"model": RunsCode()}, evil)
    refused("evil", None, "only numpy arrays are read", src=evil)
    if os.path.exists(marker):
        problems.append("the pickle's code ran")
    refused("directory", None, "not a regular file", src=work)

    for p in problems:
        print("FAIL:", p)
    if not problems:
        print("detectron2 .pkl and .pth (2fc and GN 4conv1fc heads), and a Caffe2 ResNet: "
              "converted exactly; 5 refusals")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
