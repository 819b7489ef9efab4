#!/usr/bin/env python3
"""Host data reaches the device only through ops::upload (issue 30; docs/modeling.md, "Host
synchronisations").

  check_uploads.py REPO_ROOT     checks the step's layers (src/ and include/largedet/ of ops and
                                 modeling)
  check_uploads.py --self-test   checks the rule on statements written to pass or fail it

A tensor made on the host (`torch::tensor`, `at::tensor`, `from_blob`, or pinned by hand) and
moved to a device in the same statement (`.to(device...)`, or made with a tensor's options, which carry its device) is
a pageable, blocking copy on a GPU: the stream waits for it. On the CPU nothing is copied, so the
host-sync profiler cannot see it there; this check does, in the source. `ops::upload` pins and
copies without blocking, and is counted by the profiler on every device.
"""
import os
import re
import sys

HOST_MADE = re.compile(r"\b(?:torch|at)::(?:tensor|from_blob)\s*\(|\.pin_memory\(\)")
# What puts the new tensor on a device: an explicit device, or options taken from a tensor.
TO_DEVICE = re.compile(r"device|\.options\(\)|\bopts\b|\boptions\b")
LAYERS = ["src/ops", "src/modeling", "include/largedet/ops", "include/largedet/modeling"]


def statements(text):
    """(line number, statement) for each `;`-terminated statement, comments removed."""
    text = re.sub(r"//[^\n]*", "", text)
    line, start = 1, 0
    for i, ch in enumerate(text):
        if ch == ";":
            stmt = text[start:i + 1]
            yield line + stmt[:len(stmt) - len(stmt.lstrip())].count("\n"), stmt
            line += stmt.count("\n")
            start = i + 1


def violations(text):
    for line, stmt in statements(text):
        if HOST_MADE.search(stmt) and TO_DEVICE.search(stmt) and "upload(" not in stmt:
            yield line, " ".join(stmt.split())


def self_test():
    bad = [
        "auto x = at::tensor({0, 2}, boxes.options().dtype(at::kLong));",
        "auto c = at::tensor(counts, at::kLong).to(boxes.device(), /*non_blocking=*/true);",
        "return torch::tensor(v, torch::kDouble)\n    .to(like.options()).view({-1, 1, 1});",
        "auto s = at::tensor(sizes, at::kDouble).to(opts);",
        "keys = keys.pin_memory().to(labels.device(), /*non_blocking=*/true);",
    ]
    good = [
        "auto c = ops::upload(at::tensor(counts, at::kLong), boxes.device(), \"counts\");",
        "auto s = at::tensor(sizes, at::kDouble).to(dtype);",
        "auto flags = torch::tensor({1.0, 0.0}, torch::kDouble);",
        "auto x = at::zeros({3}, boxes.options());",
        "// at::tensor(v).to(device) in a comment\nint i = 0;",
    ]
    failures = [s for s in bad if not list(violations(s))]
    failures += [s for s in good if list(violations(s))]
    for s in failures:
        print("self-test: wrongly judged: %r" % s)
    print("self-test: %d statements, %d wrongly judged" % (len(bad) + len(good), len(failures)))
    return 1 if failures else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    found = files = 0
    for layer in LAYERS:
        for folder, _, names in os.walk(os.path.join(root, layer)):
            for name in sorted(names):
                if not name.endswith((".cpp", ".h", ".cu")):
                    continue
                path = os.path.join(folder, name)
                files += 1
                with open(path, encoding="utf-8") as f:
                    for line, stmt in violations(f.read()):
                        found += 1
                        print("%s:%d: host data sent to the device without ops::upload: %s"
                              % (os.path.relpath(path, root), line, stmt))
    print("%d files, %d statements that send host data to the device without ops::upload"
          % (files, found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
