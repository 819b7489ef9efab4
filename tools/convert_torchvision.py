#!/usr/bin/env python3
"""Converts a torchvision detector or backbone checkpoint into LargeDet safetensors.

LargeDet uses torchvision's parameter names, so conversion is a rename-free copy:
  convert_torchvision.py fasterrcnn_resnet50_fpn_coco-258fb6c6.pth out.safetensors
  convert_torchvision.py --backbone resnet50-0676ba61.pth out.safetensors   # ImageNet ResNet
A backbone-only checkpoint gets the prefix "backbone.body." (its fc layer is dropped) so that it
loads into a detector as torchvision's weights_backbone does.
"""
import argparse
import json
import struct
import sys


def _dtype_names():
    import torch
    return {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
            torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as safetensors (8-byte little-endian header length, JSON, data)."""
    names = _dtype_names()
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        data = t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


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
