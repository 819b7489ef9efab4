"""Shared by the Python checks of tests/tools that need torch, torchvision and safetensors (the
.venv's): importing this exits 77 (ctest's skip) without them, and gives the repository root, a
subprocess runner and the safetensors reader."""
import os
import subprocess
import sys

try:
    import safetensors  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def run(cmd):
    """(exit code, stdout + stderr) of a command."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def read_safetensors(path):
    from safetensors.torch import load_file
    return load_file(path)
