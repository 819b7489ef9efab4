"""Measures what docs/scaling.md's model needs from R50-FPN Faster R-CNN training: gradient bytes,
BatchNorm layer count (SyncBN allreduces), forward and backward time, and when during backward each
parameter's gradient is final (the profile that decides how much allreduce hides behind backward).

torchvision's fasterrcnn_resnet50_fpn (no pretrained weights: trainable BatchNorm everywhere, as with
SyncBN) stands in for LargeDet's model, which is not written yet. CPU timings: the *shape* of the
backward profile carries over to GPUs, the absolute times do not.

  .venv/bin/python tests/distributed/scaling/r50fpn_profile.py --out /tmp/r50fpn_profile.json
"""
import argparse
import json
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, trainable_backbone_layers=5)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    names = {id(p): n for n, p in model.named_parameters()}
    bn_layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    grad_bytes = sum(p.numel() * p.element_size() for p in params)

    # COCO-like input: 640x480 images, resized by the model to 800 on the short side.
    images = [torch.rand(3, 480, 640) for _ in range(args.images)]
    targets = [{"boxes": torch.tensor([[50.0, 60.0, 200.0, 220.0], [300.0, 100.0, 600.0, 400.0]]),
                "labels": torch.tensor([1, 3])} for _ in range(args.images)]
    ready = []

    def hook(p):
        ready.append((time.perf_counter(), p.numel() * p.element_size(), names[id(p)]))

    for p in params:
        p.register_post_accumulate_grad_hook(hook)

    runs = []
    for it in range(args.iters + 1):  # the first is warm-up
        model.zero_grad(set_to_none=True)
        ready.clear()
        t0 = time.perf_counter()
        losses = model(images, targets)
        loss = sum(losses.values())
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if it == 0:
            continue
        runs.append({"forward_s": t1 - t0, "backward_s": t2 - t1,
                     # (fraction of backward elapsed, bytes of gradients final so far)
                     "profile": [((t - t1) / (t2 - t1), b, n) for t, b, n in ready]})
    best = min(runs, key=lambda r: r["forward_s"] + r["backward_s"])
    out = {"model": "torchvision fasterrcnn_resnet50_fpn, trainable BN, 640x480 -> 800x1067",
           "images_per_iteration": args.images, "threads": args.threads,
           "parameters": sum(p.numel() for p in params), "gradient_bytes": grad_bytes,
           "parameter_tensors": len(params), "batchnorm_layers": bn_layers,
           "forward_s": best["forward_s"], "backward_s": best["backward_s"],
           "profile": best["profile"]}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print({k: v for k, v in out.items() if k != "profile"})


if __name__ == "__main__":
    main()
