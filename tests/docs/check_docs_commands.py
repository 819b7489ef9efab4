#!/usr/bin/env python3
"""Every `largedet ...` command line of README.md and docs/*.md against the built tool.

  check_docs_commands.py LARGEDET [REPO_ROOT]

Reads the command lines in fenced code blocks (continuation lines joined) and in inline code, and
for each invocation of `largedet` (or of a path ending in /largedet) checks that
- its subcommand (and a nested one: `bench eval`) exists in `LARGEDET --help`;
- every flag it uses (`--flag`, `--flag=value`, `-o`) appears in `LARGEDET SUB --help`;
- every KEY=VALUE override names a key of `LARGEDET config --keys`;
- the binary is `largedet` or one a target makes (build/bin/largedet, build-gpu/bin/largedet).
Beside them, a script run by path (`python bench/x.py`, `bash scripts/y.sh`, `tools/z.py ...`)
must exist, and `make TARGET` must name a target of the Makefile.

Placeholders (`RECIPE`, `<ImageID>`, `...`, `[--optional 1]`, alternatives `a | b` inside
brackets) are understood as the docs write them. Exits 1 listing FILE:LINE and what is wrong.
Standard library only.

  --hide=SUB:FLAG   (repeatable) check as if the tool no longer had FLAG in `largedet SUB`
                    (e.g. --hide=train:--resume, --hide="bench eval:--type"): the test that the
                    check catches a documented flag that was removed
"""
import glob
import os
import re
import subprocess
import sys

SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1", "<", "&>"}
MADE_BINARIES = {"largedet", "build/bin/largedet", "./build/bin/largedet",
                 "build-gpu/bin/largedet", "./build-gpu/bin/largedet"}
SKIP_FENCES = {"cpp", "c++", "c", "cmake", "yaml", "yml", "json", "python", "py"}
OVERRIDE = re.compile(r"^([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)=")
PLACEHOLDER_KEYS = {"KEY"}


def run(binary, args):
    p = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def parse_help(text):
    """(option names, subcommand names) of a CLI11 --help text."""
    options, subcommands = set(), set()
    section = None
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Z][\w ]*):\s*$", line)  # "Options:", also inside option groups
        if m:
            section = m.group(1)
            continue
        if line.startswith("[Option Group"):
            continue
        if section == "Options" and re.match(r"^ {2,6}-", line):
            for name in line.split()[0].split(","):
                if name.startswith("-"):
                    options.add(name)
        elif section == "Subcommands":
            m = re.match(r"^ {2,6}([a-z][\w-]*)", line)
            if m:
                subcommands.add(m.group(1))
    return options, subcommands


class Tool:
    def __init__(self, binary, hidden=()):
        self.binary = binary
        self.hidden = set(hidden)  # (subcommand path, flag) taken out of the help
        self.cache = {}
        self.keys = None

    def help(self, path):
        """(ok, options, subcommands) of `binary *path --help`."""
        key = tuple(path)
        if key not in self.cache:
            rc, text = run(self.binary, list(path) + ["--help"])
            opts, subs = parse_help(text) if rc == 0 else (set(), set())
            opts -= {flag for sub, flag in self.hidden if sub == " ".join(path)}
            self.cache[key] = (rc == 0, opts, subs)
        return self.cache[key]

    def config_keys(self):
        if self.keys is None:
            rc, text = run(self.binary, ["config", "--keys"])
            if rc != 0:
                raise SystemExit("`%s config --keys` failed:\n%s" % (self.binary, text))
            self.keys = {line.split(" = ", 1)[0] for line in text.splitlines() if " = " in line}
        return self.keys


def tokenize(text):
    """Shell-like words (quotes kept together and removed); a word starting with # ends the line."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "#":
            break
        word, quoted = "", False
        while i < n and not text[i].isspace():
            c = text[i]
            if c in "'\"":
                end = text.find(c, i + 1)
                if end < 0:
                    end = n
                word += text[i + 1:end]
                quoted = True
                i = end + 1
            else:
                word += c
                i += 1
        words.append((word, quoted))
    return words


def is_placeholder(word):
    w = word.strip("[]()")
    return (not w or "<" in w or w.startswith("...") or w.endswith("...") or
            re.fullmatch(r"[A-Z][A-Z0-9_]*", w) is not None)


def snippets(path):
    """(line number, text) of each command-like piece of a Markdown file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, prose = [], []  # prose: (line number, text) outside fences
    fence, skip, pending, pending_line = None, False, "", 0
    for number, line in enumerate(lines, 1):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence is None and m:
            fence, skip = m.group(1), m.group(2).lower() in SKIP_FENCES
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                if pending:
                    out.append((pending_line, pending))
                fence, pending = None, ""
                continue
            if skip:
                continue
            if not pending:
                pending_line = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
            else:
                out.append((pending_line, pending + line))
                pending = ""
            continue
        prose.append((number, line))
    # Inline code spans, which may run over a line break (not over a blank line).
    paragraph = []
    for number, line in prose + [(0, "")]:
        if line.strip():
            paragraph.append((number, line))
            continue
        if paragraph:
            text = "\n".join(l for _, l in paragraph)
            starts = [0]
            for _, l in paragraph:
                starts.append(starts[-1] + len(l) + 1)
            for m in re.finditer(r"(`+)(.+?)\1", text, re.S):
                k = max(j for j in range(len(paragraph)) if starts[j] <= m.start())
                out.append((paragraph[k][0], m.group(2).replace("\n", " ")))
        paragraph = []
    return out


def check_snippet(tool, root, targets, where, text, problems, counts):
    words = tokenize(text)
    plain = [w for w, _ in words]

    # Scripts run by path, and make targets.
    for i, w in enumerate(plain):
        runner = i == 0 or plain[i - 1] in SEPARATORS or re.search(
            r"(^|/)(python3?|bash|sh)$", plain[i - 1]) is not None
        if (runner and re.search(r"\.(py|sh)$", w) and "/" in w and
                not w.startswith(("/", "~", "..", "$")) and not is_placeholder(w)):
            counts["scripts"] += 1
            if not os.path.exists(os.path.join(root, w)):
                problems.append("%s: %s: no such script in the repository" % (where, w))
    for i, w in enumerate(plain):
        if w != "make" or (i > 0 and plain[i - 1] not in SEPARATORS):
            continue
        for target in plain[i + 1:]:
            if target in SEPARATORS:
                break
            if "=" in target or target.startswith("-"):
                continue
            counts["make"] += 1
            if target not in targets:
                problems.append("%s: make %s: no such target in the Makefile" % (where, target))

    for i, w in enumerate(plain):
        if not (w == "largedet" or w.endswith("/largedet")):
            continue
        if w not in MADE_BINARIES and not w.startswith("$"):
            problems.append("%s: %s: no target builds the tool there (use build/bin/largedet)"
                            % (where, w))
        args, depth = [], 0
        for word, quoted in words[i + 1:]:
            if not quoted:
                if word == "--" or (word in SEPARATORS and depth == 0):
                    break
                depth = max(0, depth + word.count("[") - word.count("]"))
                if word == "|":  # alternatives inside brackets
                    continue
            args.append((word, quoted))
        check_invocation(tool, where, args, problems, counts)


def flag_of(word):
    w = word.lstrip("[(").rstrip("])")
    if not w.startswith("-") or w in ("-", "--") or re.match(r"^-\d", w):
        return None
    return w.split("=", 1)[0]


def check_invocation(tool, where, args, problems, counts):
    ok, options, subcommands = tool.help([])
    path, k = [], 0
    # Global options before the subcommand.
    while k < len(args) and flag_of(args[k][0]):
        f = flag_of(args[k][0])
        counts["flags"] += 1
        if f not in options:
            problems.append("%s: largedet %s: no such option of largedet" % (where, f))
        k += 1
        if f == "--log-level" and "=" not in args[k - 1][0]:
            k += 1
    if k >= len(args):
        return  # `largedet`, `largedet --help`
    sub = args[k][0]
    if is_placeholder(sub):
        return  # `largedet CMD --help`
    if not re.fullmatch(r"[a-z][a-z0-9-]*", sub):
        return  # prose that names the tool (`largedet CLI;`), not a command line
    while True:
        counts["commands"] += 1
        if sub not in subcommands:
            problems.append("%s: largedet %s: no such command" % (where, " ".join(path + [sub])))
            return
        path.append(sub)
        ok, options, subcommands = tool.help(path)
        if not ok:
            problems.append("%s: `largedet %s --help` failed" % (where, " ".join(path)))
            return
        k += 1
        if subcommands and k < len(args) and not flag_of(args[k][0]) and \
                not is_placeholder(args[k][0]):
            sub = args[k][0]
            continue
        break
    for word, quoted in args[k:]:
        f = flag_of(word)
        if f:
            counts["flags"] += 1
            if f not in options:
                problems.append("%s: largedet %s %s: no such option (`largedet %s --help`)"
                                % (where, " ".join(path), f, " ".join(path)))
            continue
        m = OVERRIDE.match(word.lstrip("["))
        if m and m.group(1) not in PLACEHOLDER_KEYS:
            counts["keys"] += 1
            if m.group(1) not in tool.config_keys():
                problems.append("%s: largedet %s %s: no such configuration key "
                                "(`largedet config --keys`)" % (where, " ".join(path), m.group(1)))


def main():
    hidden = [a[len("--hide="):].split(":", 1) for a in sys.argv[1:] if a.startswith("--hide=")]
    positional = [a for a in sys.argv[1:] if not a.startswith("--hide=")]
    if len(positional) not in (1, 2) or any(len(h) != 2 for h in hidden):
        raise SystemExit(__doc__)
    binary = os.path.abspath(positional[0])
    root = positional[1] if len(positional) == 2 else os.path.join(os.path.dirname(__file__),
                                                                   "..", "..")
    root = os.path.abspath(root)
    if not os.access(binary, os.X_OK):
        raise SystemExit("not an executable: %s" % binary)
    tool = Tool(binary, [tuple(h) for h in hidden])
    if not tool.help([])[0]:
        raise SystemExit("`%s --help` failed" % binary)
    targets = set()
    with open(os.path.join(root, "Makefile"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
            if m:
                targets.add(m.group(1))
    files = [os.path.join(root, "README.md")]
    files += sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    problems = []
    counts = {"commands": 0, "flags": 0, "keys": 0, "scripts": 0, "make": 0}
    for path in files:
        rel = os.path.relpath(path, root)
        for line, text in snippets(path):
            check_snippet(tool, root, targets, "%s:%d" % (rel, line), text, problems, counts)
    for p in problems:
        print(p)
    print("%d files: %d largedet commands, %d flags, %d configuration keys, %d scripts, "
          "%d make targets checked; %d problems" % (len(files), counts["commands"], counts["flags"],
                                                    counts["keys"], counts["scripts"],
                                                    counts["make"], len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
