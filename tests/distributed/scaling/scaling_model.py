"""The iteration-time model of docs/scaling.md: data-parallel R50-FPN training on n GPUs with
overlapped bucketed ring allreduce and SyncBN, from the measured profile of r50fpn_profile.py.

  .venv/bin/python tests/distributed/scaling/scaling_model.py --profile /tmp/r50fpn_profile.json

Per iteration on the slowest rank (b images):
  forward  = b * F,  backward = b * G           F + G = per-image compute on the target GPU, split
                                                as measured (G / (F + G) from the profile)
  syncbn   = 2 * L * t_small(n)                 L BN layers, one small allreduce each way, on the
                                                critical path (nothing to overlap with)
  buckets  : 25 MB each, reverse registration order; bucket k is ready when the profile says its
             last gradient is final; one communication stream: start_k = max(ready_k, end_{k-1}),
             end_k = start_k + t_ring(size_k)
  t_ring(m) = 2 (n-1)/n * m / busbw + 2 (n-1) * alpha      (nccl-tests' bus bandwidth)
  exposed  = end_last - backward                (communication not hidden behind backward)
  t_iter   = forward + backward + syncbn + exposed + optimizer
"""
import argparse
import json
import math

COCO_TRAIN_IMAGES = 118287


def buckets_from_profile(profile, bucket_bytes):
    """[(ready fraction of backward, bytes)] per bucket, filled in gradient-ready order."""
    out, size, last = [], 0, 0.0
    for frac, nbytes, _ in profile:
        if size and size + nbytes > bucket_bytes:
            out.append((last, size))
            size = 0
        size += nbytes
        last = frac
    if size:
        out.append((last, size))
    return out


def iteration(n, b, prof, per_image_s, busbw, alpha, t_small, bucket_bytes, optimizer_s):
    share_bwd = prof["backward_s"] / (prof["forward_s"] + prof["backward_s"])
    fwd, bwd = b * per_image_s * (1 - share_bwd), b * per_image_s * share_bwd
    syncbn = 2 * prof["batchnorm_layers"] * (t_small(n) if n > 1 else 0.0)
    end = 0.0
    total_comm = 0.0
    if n > 1:
        for frac, size in buckets_from_profile(prof["profile"], bucket_bytes):
            t = 2 * (n - 1) / n * size / busbw + 2 * (n - 1) * alpha
            total_comm += t
            end = max(frac * bwd, end) + t
    exposed = max(0.0, end - bwd)
    return {"fwd": fwd, "bwd": bwd, "syncbn": syncbn, "comm": total_comm, "exposed": exposed,
            "iter": fwd + bwd + syncbn + exposed + optimizer_s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--per-image-s", type=float, default=0.105,
                    help="forward+backward seconds per image on the target GPU")
    ap.add_argument("--alpha-us", type=float, default=5.0, help="per-step ring latency")
    ap.add_argument("--small-us", type=float, default=50.0,
                    help="latency of one small (SyncBN) allreduce at 160 GPUs, log2(n) scaling")
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    ap.add_argument("--optimizer-ms", type=float, default=5.0)
    ap.add_argument("--global-batch", type=int, default=1024)
    ap.add_argument("--epochs", type=float, default=12)
    args = ap.parse_args()
    prof = json.load(open(args.profile))
    alpha = args.alpha_us * 1e-6
    t_small = lambda n: args.small_us * 1e-6 * math.log2(n) / math.log2(160)
    bucket = args.bucket_mb * 2**20
    opt = args.optimizer_ms / 1000
    gb = prof["gradient_bytes"]
    first = buckets_from_profile(prof["profile"], bucket)[0][0]
    print(f"gradients {gb / 1e6:.1f} MB in {prof['parameter_tensors']} tensors, "
          f"{prof['batchnorm_layers']} BN layers; measured forward {prof['forward_s']:.2f} s, "
          f"backward {prof['backward_s']:.2f} s per {prof['images_per_iteration']} image(s) on CPU "
          f"(backward share {prof['backward_s'] / (prof['forward_s'] + prof['backward_s']):.2f}); "
          f"first 25 MB bucket ready at {first:.2f} of backward")
    iters = math.ceil(args.epochs * COCO_TRAIN_IMAGES / args.global_batch)

    def fmt(ms):
        return f"{ms * 1000:.0f}"

    print("\n### Seed setting: global batch %d on 160 GPUs (7 images on the slowest rank), "
          "%d iterations for %g epochs\n" % (args.global_batch, iters, args.epochs))
    print("| busbw (GB/s) | compute (ms) | SyncBN (ms) | grad allreduce (ms) | exposed (ms) "
          "| iteration (ms) | efficiency | wall time (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for bw in (1, 3, 10, 25, 50):
        r = iteration(160, 7, prof, args.per_image_s, bw * 1e9, alpha, t_small, bucket, opt)
        base = iteration(1, 7, prof, args.per_image_s, bw * 1e9, alpha, t_small, bucket, opt)
        print(f"| {bw} | {fmt(r['fwd'] + r['bwd'])} | {fmt(r['syncbn'])} | {fmt(r['comm'])} | "
              f"{fmt(r['exposed'])} | {fmt(r['iter'])} | {base['iter'] / r['iter']:.2f} | "
              f"{iters * r['iter'] / 60:.0f} |")

    print("\n### Fixed global batch %d, more GPUs (busbw 10 GB/s)\n" % args.global_batch)
    print("| GPUs | images/GPU (max) | backward (ms) | grad allreduce (ms) | exposed (ms) "
          "| iteration (ms) | images/s | wall time (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (32, 64, 128, 160, 256, 512, 1024):
        b = math.ceil(args.global_batch / n)
        r = iteration(n, b, prof, args.per_image_s, 10e9, alpha, t_small, bucket, opt)
        print(f"| {n} | {b} | {fmt(r['bwd'])} | {fmt(r['comm'])} | {fmt(r['exposed'])} | "
              f"{fmt(r['iter'])} | {args.global_batch / r['iter']:.0f} | "
              f"{iters * r['iter'] / 60:.1f} |")

    # Where communication stops hiding: the busbw below which exposed > one last bucket.
    print("\n### Bus bandwidth needed to hide the gradient allreduce (160 GPUs)\n")
    print("| images/GPU | backward (ms) | busbw for exposed <= last bucket + 10% (GB/s) |")
    print("|---|---|---|")
    for b in (1, 2, 4, 7, 8):
        lo, hi = 0.05, 500.0
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            r = iteration(160, b, prof, args.per_image_s, mid * 1e9, alpha, t_small, bucket, opt)
            last = buckets_from_profile(prof["profile"], bucket)[-1][1]
            t_last = 2 * 159 / 160 * last / (mid * 1e9) + 2 * 159 * alpha
            if r["exposed"] <= 1.1 * t_last:
                hi = mid
            else:
                lo = mid
        print(f"| {b} | {fmt(b * args.per_image_s * prof['backward_s'] / (prof['forward_s'] + prof['backward_s']))} | {hi:.1f} |")


if __name__ == "__main__":
    main()
