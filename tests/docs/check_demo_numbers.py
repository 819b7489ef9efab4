#!/usr/bin/env python3
"""The `make demo` numbers the docs quote against the demo's recorded runs.

  check_demo_numbers.py [REPO_ROOT]

The recorded runs are the table of docs/benchmarks.md, "Training: `make demo`" (one row per run:
bbox AP / AP50 / AP75 and the time of training plus evaluations). Checks that
- README's demo output (AP, AP50, AP75, the verdict line's AP and time) is one recorded run;
- every recorded run's bbox AP is within the drift README states ("by up to D bbox AP") of it,
  and every other AP triple README quotes is a recorded run;
- the AP target of scripts/demo.sh is README's, and leaves at least that drift under README's AP;
- the ranges quoted by scripts/demo.sh and configs/synthetic/demo.yaml are the recorded runs';
- README's LAMB-against-PMD-LAMB numbers are those of the benchmarks' table.
Exits 1 listing what disagrees. Standard library only.
"""
import os
import re
import sys

NUM = r"(\d\.\d+)"


def minutes(mmss):
    m, s = mmss.split(":")
    return int(m) + int(s) / 60.0


def section(text, title):
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))

    def read(rel):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            return f.read()

    readme, bench = read("README.md"), read("docs/benchmarks.md")
    demo_sh, demo_yaml = read("scripts/demo.sh"), read("configs/synthetic/demo.yaml")
    problems = []

    def need(pattern, text, what, flags=0):
        m = re.search(pattern, text, flags)
        if not m:
            raise SystemExit("cannot find %s (pattern %r)" % (what, pattern))
        return m

    # The recorded runs.
    demo = section(bench, "## Training: `make demo`")
    runs = []
    header = None
    for line in demo.splitlines():
        cells = []
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "bbox AP / AP50 / AP75" in cells[2]:
            header = cells
            continue
        if header and len(cells) == 4 and not cells[0].startswith("---"):
            aps = [float(x) for x in re.findall(r"\d\.\d{3}", cells[2])[:3]]
            time = re.search(r"\d+:\d\d", cells[3])
            if aps and time:
                runs.append({"run": cells[0], "aps": aps, "time": time.group(0)})
        elif header and not cells:
            header = None
    if not runs:
        raise SystemExit("no recorded runs in docs/benchmarks.md, \"Training: `make demo`\"")
    recorded_aps = [r["aps"][0] for r in runs]

    # README's demo output.
    ap_lines = {}
    for iou in ("0.50:0.95", "0.50", "0.75"):
        m = need(r"Average Precision\s+\(AP\) @\[ IoU=" + re.escape(iou) +
                 r"\s+\| area=\s+all \| maxDets=100 \] = " + NUM, readme, "README's AP line " + iou)
        ap_lines[iou] = float(m.group(1))
    quoted = [ap_lines["0.50:0.95"], ap_lines["0.50"], ap_lines["0.75"]]
    verdict = need(r"LargeDet demo: bbox AP " + NUM + r" on the synthetic val split \(target >= " +
                   NUM + r"\); training plus evaluation took (\d+:\d\d)", readme,
                   "README's verdict line")
    ap, target, time = float(verdict.group(1)), float(verdict.group(2)), verdict.group(3)
    if ap != quoted[0]:
        problems.append("README: the verdict line's bbox AP %.3f is not the AP line's %.3f"
                        % (ap, quoted[0]))
    match = [r for r in runs if r["aps"] == quoted and r["time"] == time]
    if not match:
        problems.append("README's demo output (%s, %s) is none of the recorded runs of "
                        "docs/benchmarks.md: %s" % (" / ".join("%.3f" % x for x in quoted), time,
                                                     "; ".join("%s: %s, %s" % (
                                                         r["run"], r["aps"], r["time"])
                                                         for r in runs)))
    drift = float(need(r"by up to " + NUM + r"\s+bbox AP", readme,
                       "README's stated drift").group(1))
    for r in runs:
        if abs(r["aps"][0] - ap) > drift + 1e-9:
            problems.append("docs/benchmarks.md: run %s ended at bbox AP %.3f, %.3f from README's "
                            "%.3f: more than the drift README states (%.3f)"
                            % (r["run"], r["aps"][0], abs(r["aps"][0] - ap), ap, drift))
    triples = {tuple(r["aps"]) for r in runs if len(r["aps"]) == 3}
    for m in re.finditer(NUM + r" / " + NUM + r" /\s+" + NUM, readme):
        t = tuple(float(x) for x in m.groups())
        if t not in triples:
            problems.append("README: %s is none of the recorded runs' bbox AP / AP50 / AP75"
                            % " / ".join(m.groups()))

    # The demo script's target and comment, the recipe's header.
    target_sh = float(need(r"^TARGET_AP=" + NUM, demo_sh, "TARGET_AP in scripts/demo.sh",
                           re.M).group(1))
    if target_sh != target:
        problems.append("scripts/demo.sh: TARGET_AP=%s but README says target >= %s"
                        % (target_sh, target))
    if target_sh > ap - drift + 1e-9:
        problems.append("scripts/demo.sh: TARGET_AP=%s leaves less than README's drift (%.3f) "
                        "under its bbox AP %.3f" % (target_sh, drift, ap))
    lo, hi = min(recorded_aps), max(recorded_aps)
    m = need(r"README quotes the recorded run \(bbox AP " + NUM, demo_sh,
             "the recorded AP in scripts/demo.sh's comment")
    if float(m.group(1)) != ap:
        problems.append("scripts/demo.sh: its comment quotes bbox AP %s, README %.3f"
                        % (m.group(1), ap))
    for name, text, pattern in (
            ("scripts/demo.sh", demo_sh, r"recorded runs: " + NUM + r"-" + NUM),
            ("configs/synthetic/demo.yaml", demo_yaml, r"bbox AP " + NUM + r"-" + NUM)):
        m = need(pattern, re.sub(r"\n#\s*", " ", text), "the AP range in " + name)
        if (float(m.group(1)), float(m.group(2))) != (lo, hi):
            problems.append("%s: quotes bbox AP %s-%s, the recorded runs span %.3f-%.3f"
                            % (name, m.group(1), m.group(2), lo, hi))
    m = need(r"took ([\d.]+)-([\d.]+) minutes", re.sub(r"\n#\s*", " ", demo_yaml),
             "the time range in configs/synthetic/demo.yaml")
    times = [minutes(r["time"]) for r in runs]
    if float(m.group(1)) > min(times) or float(m.group(2)) < max(times):
        problems.append("configs/synthetic/demo.yaml: quotes %s-%s minutes, the recorded runs took "
                        "%.1f-%.1f" % (m.group(1), m.group(2), min(times), max(times)))

    # LAMB against PMD-LAMB.
    m = need(r"plain LAMB.{0,80}?ended at bbox AP " + NUM + r" against PMD-LAMB's\s+" + NUM,
             readme, "README's LAMB against PMD-LAMB", re.S)
    lamb = need(r"^\| LAMB \|.*?(\d\.\d+) \|\s*$", demo, "the LAMB row", re.M)
    pmd = need(r"^\| PMD-LAMB[^|]*\|.*?(\d\.\d+) \|\s*$", demo, "the PMD-LAMB row", re.M)
    if (m.group(1), m.group(2)) != (lamb.group(1), pmd.group(1)):
        problems.append("README: LAMB %s against PMD-LAMB %s, docs/benchmarks.md's table ends at "
                        "%s and %s" % (m.group(1), m.group(2), lamb.group(1), pmd.group(1)))

    for p in problems:
        print(p)
    print("README's demo: bbox AP %.3f / %.3f / %.3f in %s, target %.2f, stated drift %.3f; "
          "%d recorded runs (bbox AP %.3f-%.3f); %d problems"
          % (quoted[0], quoted[1], quoted[2], time, target, drift, len(runs), lo, hi,
             len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
