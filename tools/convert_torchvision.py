#!/usr/bin/env python3
"""Converts a torchvision detector or backbone checkpoint into LargeDet safetensors.

LargeDet uses torchvision's parameter names, so conversion is a rename-free copy:
  convert_torchvision.py fasterrcnn_resnet50_fpn_coco-258fb6c6.pth out.safetensors
  convert_torchvision.py --backbone resnet50-0676ba61.pth out.safetensors   # ImageNet ResNet
A backbone-only checkpoint gets the prefix "backbone.body." (its fc layer is dropped) so that it
loads into a detector as torchvision's weights_backbone does.
"""
import argparse
import sys


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as safetensors (each a CPU copy of its own: the package refuses
    tensors that share memory)."""
    from safetensors.torch import save_file
    save_file({k: tensors[k].detach().cpu().contiguous().clone() for k in sorted(tensors)}, path,
              metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None)


def convert(state_dict, backbone=False):
    out = {}
    for k, v in state_dict.items():
        if backbone:
            if k.startswith("fc."):
                continue
            k = "backbone.body." + k
        out[k] = v
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="torchvision .pth (a state_dict, or a dict with 'model')")
    p.add_argument("output", help="output .safetensors")
    p.add_argument("--backbone", action="store_true", help="an ImageNet ResNet checkpoint")
    args = p.parse_args(argv)
    import torch
    sd = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    out = convert(sd, args.backbone)
    write_safetensors(args.output, out, {"source": args.checkpoint, "format": "torchvision"})
    print(f"wrote {len(out)} tensors to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
