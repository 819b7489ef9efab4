#!/usr/bin/env python3
"""Converts a detectron2 checkpoint into LargeDet safetensors and prints the recipe keys it needs.

  convert_detectron2.py model_final_f10217.pkl mask_rcnn.safetensors   # a model-zoo detector
  convert_detectron2.py output/model_final.pth mine.safetensors        # what its trainer wrote
  convert_detectron2.py R-50.pkl r50_msra.safetensors                  # an MSRA ImageNet ResNet
                                                                       # (Caffe2 names)
Converts GeneralizedRCNN on a ResNet/ResNeXt FPN (build_resnet_fpn_backbone) with the standard
RPN head, the 2fc or 4conv1fc box head with class-specific regression, and the conv-upsample mask
head; and ImageNet ResNets in Caffe2's names (written as a backbone, `backbone.body.*`). Refused,
by key: RetinaNet (detectron2 computes P6 from C5, LargeDet and torchvision from P5), cascade and
keypoint heads, class-agnostic regression or masks, C4 and DC5 models.

What differs between the two, and how it is converted (docs/modeling.md, "Weights"):
- names: detectron2's (`backbone.bottom_up.res2.0.conv1.norm.weight`) to torchvision's
  (`backbone.body.layer1.0.bn1.weight`), which LargeDet uses;
- the background class: last in detectron2's classifier, first in ours; detectron2's box and mask
  predictors have no background row, ours have one (written as zeros: it is never read);
- the input: detectron2's MSRA models read BGR with PIXEL_STD 1; LargeDet reads RGB only, so the
  stem's input channels are reversed and the mean and std printed in RGB order;
- the stride of MSRA ResNets is in the 1x1 conv (MODEL.RESNETS.STRIDE_IN_1X1=true, printed).
The input format, mean, std and stride are not in a checkpoint: pass the ones of the detectron2
recipe that trained it when they are not detectron2's defaults (BGR, [103.53, 116.28, 123.675],
[1, 1, 1], stride in the 1x1 conv).
"""
import argparse
import io
import os
import pickle
import re
import shlex
import sys

from convert_torchvision import write_safetensors

RESNET_DEPTHS = {  # blocks per stage (res2..res5), bottleneck or basic -> depth
    ((3, 4, 6, 3), True): 50, ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152,
    ((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34,
}
UNSUPPORTED = [  # key pattern, why
    (r"^head\.|^backbone\.top_block\.",
     "a RetinaNet: detectron2 computes P6 from C5 (res5), LargeDet and torchvision from P5"),
    (r"^roi_heads\.box_(head|predictor)\.\d", "a cascade R-CNN (several box heads)"),
    (r"^roi_heads\.keypoint_head\.", "a keypoint head"),
    (r"^roi_heads\.res5\.", "a C4 model (Res5ROIHeads)"),
    (r"conv2_offset", "deformable convolutions"),
    (r"^sem_seg_head\.", "a panoptic FPN's semantic head"),
]


class ConversionError(Exception):
    pass


class _ArraysOnly(pickle.Unpickler):
    """detectron2's .pkl files hold dicts of numpy arrays: nothing else is unpickled (a pickle can
    run any code it names, so a file from elsewhere is refused rather than trusted)."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise ConversionError(f"the pickle names {module}.{name}: only numpy arrays are read "
                                  "from a .pkl (is this a detectron2 checkpoint?)")
        return super().find_class(module, name)


def load_checkpoint(path):
    """{name: torch tensor} from a detectron2 .pkl (numpy, maybe Caffe2's "blobs") or .pth."""
    import numpy
    import torch
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: not a regular file")
    if path.endswith(".pkl"):
        with open(path, "rb") as f:
            data = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
    else:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise ConversionError(f"{path}: not a plain checkpoint of tensors ({e})") from e
    if isinstance(data, dict):
        data = data.get("model", data.get("blobs", data))
    if not isinstance(data, dict) or not data:
        raise ConversionError(f"{path}: no 'model' (or 'blobs') dict of tensors in it")
    out = {}
    for k, v in data.items():
        if k.endswith("_momentum"):  # Caffe2's optimizer state
            continue
        if isinstance(v, numpy.ndarray):
            v = torch.from_numpy(numpy.ascontiguousarray(v))
        if not isinstance(v, torch.Tensor):
            raise ConversionError(f"{path}: '{k}' is a {type(v).__name__}, not an array")
        out[k] = v
    return out


def caffe2_to_detectron2(weights):
    """An ImageNet ResNet in Caffe2's names (conv1_w, res2_0_branch2a_bn_s, ...) in detectron2's
    backbone names; the classifier (pred_*) is dropped. Caffe2 folded BN into scale and bias, so the
    running mean and variance are 0 and 1, as detectron2 loads them."""
    import torch
    out = {}
    for k, v in weights.items():
        if k.startswith("pred_") or k.startswith("fc1000_"):
            continue
        m = re.fullmatch(r"(?:res_)?conv1_(w|bn_s|bn_b)", k) or \
            re.fullmatch(r"res(\d)_(\d+)_branch(1|2a|2b|2c)_(w|bn_s|bn_b)", k)
        if not m:
            raise ConversionError(f"'{k}' is not a Caffe2 ResNet name this converter knows")
        if m.lastindex == 1:
            module = "stem.conv1"
        else:
            conv = {"1": "shortcut", "2a": "conv1", "2b": "conv2", "2c": "conv3"}[m.group(3)]
            module = f"res{m.group(1)}.{m.group(2)}.{conv}"
        kind = m.group(m.lastindex)
        if kind == "w":
            out[f"backbone.bottom_up.{module}.weight"] = v
        else:
            norm = f"backbone.bottom_up.{module}.norm"
            out[f"{norm}.{'weight' if kind == 'bn_s' else 'bias'}"] = v
            out.setdefault(f"{norm}.running_mean", torch.zeros_like(v))
            out.setdefault(f"{norm}.running_var", torch.ones_like(v))
    return out


def rename(name):
    """detectron2's name -> LargeDet's (torchvision's); None for a tensor LargeDet has no use for.
    Raises ConversionError for what LargeDet cannot build."""
    for pattern, why in UNSUPPORTED:
        if re.search(pattern, name):
            raise ConversionError(f"'{name}': {why} does not convert (docs/modeling.md)")
    m = re.fullmatch(r"backbone\.bottom_up\.stem\.conv1\.(weight|norm\.(.+))", name)
    if m:
        return "backbone.body." + ("conv1.weight" if m.group(2) is None else f"bn1.{m.group(2)}")
    m = re.fullmatch(r"backbone\.bottom_up\.res(\d)\.(\d+)\.(conv\d|shortcut)\.(weight|norm\.(.+))",
                     name)
    if m:
        stage, block, conv, norm_tensor = int(m.group(1)), m.group(2), m.group(3), m.group(5)
        prefix = f"backbone.body.layer{stage - 1}.{block}."
        if conv == "shortcut":
            return prefix + ("downsample.0.weight" if norm_tensor is None
                             else f"downsample.1.{norm_tensor}")
        i = conv[len("conv"):]
        return prefix + (f"conv{i}.weight" if norm_tensor is None else f"bn{i}.{norm_tensor}")
    m = re.fullmatch(r"backbone\.fpn_(lateral|output)(\d)\.(weight|bias|norm\.(.+))", name)
    if m:
        blocks = "inner_blocks" if m.group(1) == "lateral" else "layer_blocks"
        level = int(m.group(2)) - 2  # re-indexed from the lowest level in convert()
        tail = f"0.{m.group(3)}" if m.group(4) is None else f"1.{m.group(4)}"
        return f"backbone.fpn.{blocks}.@{level}.{tail}"
    rpn = {"conv": "conv.0.0", "objectness_logits": "cls_logits", "anchor_deltas": "bbox_pred"}
    m = re.fullmatch(r"proposal_generator\.rpn_head\.(\w+)\.(weight|bias)", name)
    if m and m.group(1) in rpn:
        return f"rpn.head.{rpn[m.group(1)]}.{m.group(2)}"
    m = re.fullmatch(r"roi_heads\.box_predictor\.(cls_score|bbox_pred)\.(weight|bias)", name)
    if m:
        return name
    m = re.fullmatch(r"roi_heads\.box_head\.(conv|fc)(\d+)\.(weight|bias|norm\.(.+))", name)
    if m:  # placed once the head's shape is known, in convert()
        return f"roi_heads.box_head.@{m.group(1)}{m.group(2)}.{m.group(3)}"
    m = re.fullmatch(r"roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias|norm\.(.+))", name)
    if m:
        tail = f"0.{m.group(2)}" if m.group(3) is None else f"1.{m.group(3)}"
        return f"roi_heads.mask_head.{int(m.group(1)) - 1}.{tail}"
    m = re.fullmatch(r"roi_heads\.mask_head\.(deconv|predictor)\.(weight|bias)", name)
    if m:
        part = "conv5_mask" if m.group(1) == "deconv" else "mask_fcn_logits"
        return f"roi_heads.mask_predictor.{part}.{m.group(2)}"
    if name.endswith("num_batches_tracked") or name.startswith("pixel_"):
        return None  # BN's counter; detectron2's registered mean/std buffers (printed as keys)
    raise ConversionError(f"'{name}' is not a detectron2 GeneralizedRCNN/ResNet-FPN name this "
                          "converter knows")


def _place_box_head(out):
    """detectron2's convK/fcK -> torchvision's layers: fc6/fc7 for the plain 2fc head, else one
    Sequential of conv-norm-ReLU blocks, a Flatten, then Linear/ReLU pairs (docs/modeling.md)."""
    keys = [k for k in out if k.startswith("roi_heads.box_head.@")]
    convs = {int(re.search(r"@conv(\d+)", k).group(1)) for k in keys if "@conv" in k}
    fcs = {int(re.search(r"@fc(\d+)", k).group(1)) for k in keys if "@fc" in k}
    plain = not convs and len(fcs) == 2 and not any(".norm." in k for k in keys)
    for k in keys:
        m = re.fullmatch(r"roi_heads\.box_head\.@(conv|fc)(\d+)\.(weight|bias|norm\.(.+))", k)
        kind, i, tail = m.group(1), int(m.group(2)), m.group(3)
        if plain:
            new = f"roi_heads.box_head.fc{5 + i}.{tail}"
        elif kind == "conv":
            new = f"roi_heads.box_head.{i - 1}." + (f"0.{tail}" if m.group(4) is None
                                                   else f"1.{m.group(4)}")
        else:
            new = f"roi_heads.box_head.{len(convs) + 1 + 2 * (i - 1)}.{tail}"
        out[new] = out.pop(k)
    return len(convs), len(fcs)


def _place_fpn(out):
    lowest = min((int(re.search(r"@(\d+)", k).group(1)) for k in out if ".fpn." in k and "@" in k),
                 default=0)
    for k in [k for k in out if ".fpn." in k and "@" in k]:
        level = int(re.search(r"@(\d+)", k).group(1))
        out[re.sub(r"@\d+", str(level - lowest), k)] = out.pop(k)
    return lowest + 2


def convert(weights, input_format="BGR", pixel_mean=(103.530, 116.280, 123.675),
            pixel_std=(1.0, 1.0, 1.0), stride_in_1x1=True):
    """detectron2 weights -> (LargeDet tensors, recipe overrides as KEY=VALUE strings)."""
    import torch
    if any(re.fullmatch(r"(res_)?conv1_w|res\d_\d+_branch.*", k) for k in weights):
        weights = caffe2_to_detectron2(weights)
    out = {}
    for k, v in weights.items():
        new = rename(k)
        if new is not None:
            out[new] = v
    if not out:
        raise ConversionError("no tensor of the checkpoint converts")
    keys = []
    stem = "backbone.body.conv1.weight"
    if stem in out and input_format == "BGR":
        out[stem] = out[stem].flip(1)  # the stem reads RGB: its input channels reversed
    rgb = list(reversed(pixel_mean)) if input_format == "BGR" else list(pixel_mean)
    rgb_std = list(reversed(pixel_std)) if input_format == "BGR" else list(pixel_std)
    keys += ["INPUT.FORMAT=RGB", f"MODEL.PIXEL_MEAN={_values(rgb)}",
             f"MODEL.PIXEL_STD={_values(rgb_std)}",
             f"MODEL.RESNETS.STRIDE_IN_1X1={'true' if stride_in_1x1 else 'false'}"]
    keys += _resnet_keys(out)
    if any(".fpn." in k for k in out):
        lowest = _place_fpn(out)
        if lowest != 2:
            raise ConversionError(f"the FPN starts at p{lowest}: only p2-p5 (R-CNN) converts")
        keys += _norm_key("MODEL.FPN.NORM", out, "backbone.fpn.")
    cls = out.get("roi_heads.box_predictor.cls_score.weight")
    if cls is not None:
        num_classes = cls.shape[0] - 1
        for t in ("weight", "bias"):  # background: last in detectron2, first in ours
            c = out[f"roi_heads.box_predictor.cls_score.{t}"]
            out[f"roi_heads.box_predictor.cls_score.{t}"] = torch.cat([c[-1:], c[:-1]])
            b = out[f"roi_heads.box_predictor.bbox_pred.{t}"]
            if b.shape[0] != 4 * num_classes:
                raise ConversionError(
                    f"roi_heads.box_predictor.bbox_pred.{t} has {b.shape[0]} rows for "
                    f"{num_classes} classes: class-agnostic regression does not convert")
            out[f"roi_heads.box_predictor.bbox_pred.{t}"] = torch.cat(
                [b.new_zeros((4,) + b.shape[1:]), b])
        convs, fcs = _place_box_head(out)
        keys += [f"MODEL.ROI_HEADS.NUM_CLASSES={num_classes}",
                 f"MODEL.ROI_BOX_HEAD.NUM_CONV={convs}", f"MODEL.ROI_BOX_HEAD.NUM_FC={fcs}"]
        keys += _norm_key("MODEL.ROI_BOX_HEAD.NORM", out, "roi_heads.box_head.")
        mask = out.get("roi_heads.mask_predictor.mask_fcn_logits.weight")
        keys.append(f"MODEL.MASK_ON={'true' if mask is not None else 'false'}")
        if mask is not None:
            if mask.shape[0] != num_classes:
                raise ConversionError(
                    f"roi_heads.mask_head.predictor has {mask.shape[0]} channels for {num_classes} "
                    "classes: class-agnostic masks do not convert")
            for t in ("weight", "bias"):
                p = out[f"roi_heads.mask_predictor.mask_fcn_logits.{t}"]
                out[f"roi_heads.mask_predictor.mask_fcn_logits.{t}"] = torch.cat(
                    [p.new_zeros((1,) + p.shape[1:]), p])
            n = len({k.split(".")[2] for k in out if re.match(r"roi_heads\.mask_head\.\d", k)})
            keys.append(f"MODEL.ROI_MASK_HEAD.NUM_CONV={n}")
            keys += _norm_key("MODEL.ROI_MASK_HEAD.NORM", out, "roi_heads.mask_head.")
    return out, keys


def _norm_key(key, out, prefix):
    """The norm a head's tensors imply: none, GN (affine only) or BN (running statistics, which
    also load into SyncBN and FrozenBN)."""
    tensors = [k for k in out if k.startswith(prefix)]
    if not any(re.search(r"\.\d+\.1\.weight$", k) for k in tensors):
        return []
    return [f"{key}={'BN' if any(k.endswith('running_mean') for k in tensors) else 'GN'}"]


def _values(xs):
    return "[" + ", ".join(f"{x:g}" for x in xs) + "]"


def _resnet_keys(out):
    """MODEL.RESNETS.* that the backbone's tensors imply (depth, groups, width)."""
    blocks = []
    for stage in range(1, 5):
        ids = {int(k.split(".")[3]) for k in out if k.startswith(f"backbone.body.layer{stage}.")}
        blocks.append(max(ids) + 1 if ids else 0)
    if not any(blocks):
        return []
    bottleneck = "backbone.body.layer1.0.conv3.weight" in out
    depth = RESNET_DEPTHS.get((tuple(blocks), bottleneck))
    if depth is None:
        raise ConversionError(f"a ResNet with {blocks} blocks per stage is not ResNet-18/34/50/"
                              "101/152")
    keys = [f"MODEL.RESNETS.DEPTH={depth}"]
    conv2 = out["backbone.body.layer1.0.conv2.weight"]
    groups = conv2.shape[0] // conv2.shape[1]
    width = out["backbone.body.layer1.0.conv1.weight"].shape[0] // groups
    keys += [f"MODEL.RESNETS.NUM_GROUPS={groups}", f"MODEL.RESNETS.WIDTH_PER_GROUP={width}"]
    last = "conv3" if bottleneck else "conv2"
    res2_out = out[f"backbone.body.layer1.0.{last}.weight"].shape[0]
    keys.append(f"MODEL.RESNETS.RES2_OUT_CHANNELS={res2_out}")
    return keys


def _floats(text):
    try:
        xs = [float(x) for x in text.replace("[", "").replace("]", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': three numbers, e.g. 103.53,116.28,123.675")
    if len(xs) != 3 or not all(x == x and abs(x) != float("inf") for x in xs):
        raise argparse.ArgumentTypeError(f"'{text}': three finite numbers")
    return xs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="detectron2 .pkl (model zoo, or Caffe2 ImageNet) or .pth")
    p.add_argument("output", help="output .safetensors")
    p.add_argument("--input-format", choices=["BGR", "RGB"], default="BGR",
                   help="the detectron2 recipe's INPUT.FORMAT (default BGR, detectron2's)")
    p.add_argument("--pixel-mean", type=_floats, default=[103.530, 116.280, 123.675],
                   help="its MODEL.PIXEL_MEAN, in its input format's order")
    p.add_argument("--pixel-std", type=_floats, default=[1.0, 1.0, 1.0],
                   help="its MODEL.PIXEL_STD, in its input format's order")
    p.add_argument("--stride-in-1x1", choices=["true", "false"], default="true",
                   help="its MODEL.RESNETS.STRIDE_IN_1X1 (default true: MSRA ResNets)")
    args = p.parse_args(argv)
    try:
        weights = load_checkpoint(args.checkpoint)
        out, keys = convert(weights, args.input_format, args.pixel_mean, args.pixel_std,
                            args.stride_in_1x1 == "true")
    except ConversionError as e:
        print(f"convert_detectron2: {e}", file=sys.stderr)
        return 1
    write_safetensors(args.output, out, {"source": args.checkpoint, "format": "detectron2",
                                         "recipe_keys": shlex.join(keys)})
    print(f"wrote {len(out)} tensors to {args.output}")
    print("use it with these keys (over the detectron2 recipe, or in yours):")
    print("  " + shlex.join([f"MODEL.WEIGHTS={args.output}"] + keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
