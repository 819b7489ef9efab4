#!/usr/bin/env python3
"""Builds the torchvision parity fixtures of the modeling tests (run at test time).

usage: torchvision_fixtures.py ARCH OUT_DIR   (ARCH: fasterrcnn | maskrcnn | retinanet)

Writes OUT_DIR/weights.safetensors (the model's state_dict through tools/convert_torchvision.py)
and OUT_DIR/io.safetensors: the input images (0..1 floats), the eval-mode detections per image,
intermediate results (FPN levels, RPN proposals), and training-mode losses on given targets with
the samplers replaced by a deterministic first-k rule that the C++ side reproduces
(first_k_sampler in modeling_test_util.h). The weights are random (fixed seed), the FrozenBN
statistics calibrated on the images so that activations have realistic scales, and the classifier
logits scaled so that scores are spread out (near-ties would make the comparison ill-posed).
"""
import os
import sys

import torch
import torchvision
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from convert_torchvision import write_safetensors  # noqa: E402

NUM_CLASSES = 5  # background included
MIN_SIZE, MAX_SIZE = 256, 400


class FirstK:
    """torchvision's BalancedPositiveNegativeSampler with the first examples instead of random."""

    def __init__(self, batch_size_per_image, positive_fraction):
        self.b, self.f = batch_size_per_image, positive_fraction

    def __call__(self, matched_idxs):
        pos, neg = [], []
        for m in matched_idxs:
            positive = torch.where(m >= 1)[0]
            negative = torch.where(m == 0)[0]
            num_pos = min(positive.numel(), int(self.b * self.f))
            num_neg = min(negative.numel(), self.b - num_pos)
            p = torch.zeros_like(m, dtype=torch.uint8)
            n = torch.zeros_like(m, dtype=torch.uint8)
            p[positive[:num_pos]] = 1
            n[negative[:num_neg]] = 1
            pos.append(p)
            neg.append(n)
        return pos, neg


def build(arch):
    torch.manual_seed(0)
    kw = dict(min_size=MIN_SIZE, max_size=MAX_SIZE)
    if arch == "retinanet":
        body = resnet50(norm_layer=FrozenBatchNorm2d)
        backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                         extra_blocks=LastLevelP6P7(256, 256))
        return RetinaNet(backbone, NUM_CLASSES, **kw)
    body = resnet50(norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3)
    cls = MaskRCNN if arch == "maskrcnn" else FasterRCNN
    return cls(backbone, NUM_CLASSES, **kw)


def calibrate(model, images):
    """Random affine FrozenBN parameters; statistics from the images (data-dependent init)."""
    g = torch.Generator().manual_seed(1)
    hooks = []
    for m in model.backbone.body.modules():
        if isinstance(m, FrozenBatchNorm2d):
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0, 0.2, generator=g)

            def pre(mod, inp):
                x = inp[0]
                mod.running_mean.copy_(x.mean((0, 2, 3)))
                mod.running_var.copy_(x.var((0, 2, 3)) + 1e-3)
            hooks.append(m.register_forward_pre_hook(pre))
    with torch.no_grad():
        il, _ = model.transform(images)
        model.backbone.body(il.tensors)
    for h in hooks:
        h.remove()


def spread(model, images, layer, std):
    """Scales `layer`'s weight so that its outputs on the images have standard deviation `std`
    around its bias."""
    out = []
    h = layer.register_forward_hook(lambda m, i, o: out.append(o - m.bias.view(
        [1, -1] + [1] * (o.dim() - 2))))
    model(images)
    h.remove()
    current = torch.cat([o.flatten() for o in out]).std().item()
    layer.weight.mul_(std / current)


def make_targets(images, with_masks):
    g = torch.Generator().manual_seed(2)
    targets = []
    for im in images:
        h, w = im.shape[-2:]
        n = 3
        x1 = torch.rand(n, generator=g) * w * 0.6
        y1 = torch.rand(n, generator=g) * h * 0.6
        bw = 16 + torch.rand(n, generator=g) * (w * 0.4)
        bh = 16 + torch.rand(n, generator=g) * (h * 0.4)
        boxes = torch.stack([x1, y1, (x1 + bw).clamp(max=w - 1), (y1 + bh).clamp(max=h - 1)], 1)
        labels = torch.randint(1, NUM_CLASSES, (n,), generator=g)
        t = {"boxes": boxes, "labels": labels}
        if with_masks:
            masks = torch.zeros(n, h, w, dtype=torch.uint8)
            yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            for i, b in enumerate(boxes):
                cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
                rx, ry = (b[2] - b[0]) / 2, (b[3] - b[1]) / 2
                masks[i] = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1).to(torch.uint8)
            t["masks"] = masks
        targets.append(t)
    return targets


def main():
    arch, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    model = build(arch)
    g = torch.Generator().manual_seed(3)
    images = [torch.rand(3, 240, 320, generator=g), torch.rand(3, 280, 200, generator=g)]
    model.eval()
    calibrate(model, images)
    with torch.no_grad():
        # Classifier logits with a spread of ~2 (std): saturated sigmoids / softmaxes would tie
        # at exactly 1.0, and the order of ties is not part of the contract.
        if arch == "retinanet":
            spread(model, images, model.head.classification_head.cls_logits, 2.0)
        else:
            spread(model, images, model.rpn.head.cls_logits, 2.0)
            spread(model, images, model.roi_heads.box_predictor.cls_score, 2.0)

    io = {}
    for i, im in enumerate(images):
        io[f"image.{i}"] = im
    captured = {}
    model.backbone.register_forward_hook(lambda m, i, o: captured.__setitem__("features", o))
    if arch != "retinanet":
        model.rpn.register_forward_hook(lambda m, i, o: captured.__setitem__("proposals", o[0]))
    with torch.no_grad():
        dets = model(images)
    for i, d in enumerate(dets):
        for k, v in d.items():
            io[f"{k}.{i}"] = v
    for j, (name, f) in enumerate(captured["features"].items()):
        io[f"feature.{j}"] = f
    for i, p in enumerate(captured.get("proposals", [])):
        io[f"proposals.{i}"] = p

    # Training losses with deterministic sampling.
    targets = make_targets(images, arch == "maskrcnn")
    for i, t in enumerate(targets):
        for k, v in t.items():
            io[f"gt_{k}.{i}"] = v
    if arch != "retinanet":
        model.rpn.fg_bg_sampler = FirstK(256, 0.5)
        model.roi_heads.fg_bg_sampler = FirstK(512, 0.25)
    model.train()
    losses = model(images, targets)
    for k, v in losses.items():
        io[f"loss.{k}"] = v.detach().reshape(1)

    meta = {
        "num_classes": NUM_CLASSES, "min_size": MIN_SIZE, "max_size": MAX_SIZE,
        "params_frozen_bn": sum(p.numel() for p in model.parameters()),
        "torchvision": torchvision.__version__,
    }
    # The parameter count of torchvision's own builder (BatchNorm2d without pretrained weights).
    builders = {"fasterrcnn": torchvision.models.detection.fasterrcnn_resnet50_fpn,
                "maskrcnn": torchvision.models.detection.maskrcnn_resnet50_fpn,
                "retinanet": torchvision.models.detection.retinanet_resnet50_fpn}
    ref = builders[arch](weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    meta["params_builder_bn"] = sum(p.numel() for p in ref.parameters())
    meta["trainable_builder_bn"] = sum(p.numel() for p in ref.parameters() if p.requires_grad)
    write_safetensors(os.path.join(out, "weights.safetensors"), model.state_dict())
    write_safetensors(os.path.join(out, "io.safetensors"), io, meta)


if __name__ == "__main__":
    main()
