#!/usr/bin/env python3
"""check_readme.py - every C snippet in README.md compiles, as C99 and as C++11.

Each ```c block is a file of its own: it includes what it uses, and it
compiles against the repository's pristine.h with -Wall -Wextra -Wpedantic
-Werror, once as C99 and once as C++11 (so a C++ user can copy it). A block
with main() is linked too (with -lbearssl -lpthread, or without BearSSL when
it defines PRISTINE_NO_TLS). Usage: python3 tools/check_readme.py [README.md]
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"]


def snippets(text):
    """(line number, code) of every ```c block."""
    out = []
    for m in re.finditer(r"^```c\n(.*?)^```", text, re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 2, m.group(1)))
    return out


def build(lang, src, exe, links):
    cc = os.environ.get("CC", "cc") if lang == "c" else os.environ.get("CXX", "c++")
    std = ["-std=c99"] if lang == "c" else ["-std=c++11", "-x", "c++"]
    cmd = [cc] + std + WARN + ["-O1", "-I", ROOT, src]
    cmd += ["-c", "-o", exe] if links is None else ["-o", exe] + links
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return r.returncode == 0, " ".join(cmd), r.stdout


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "README.md")
    blocks = snippets(open(path, encoding="utf-8").read())
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for line, code in blocks:
            src = os.path.join(tmp, "snippet_%d.c" % line)
            with open(src, "w") as f:
                f.write(code)
            links = None
            if re.search(r"\bmain\s*\(", code):
                links = ["-lpthread"] if "PRISTINE_NO_TLS" in code else ["-lbearssl", "-lpthread"]
            for lang in ("c", "c++"):
                ok, cmd, log = build(lang, src, os.path.join(tmp, "out_%d_%s" % (line, lang[0])), links)
                if not ok:
                    failed += 1
                    print("%s:%d: the snippet does not compile as %s:\n%s\n%s" % (path, line, lang, cmd, log))
    print("check_readme: %d snippets, %d compiled as C99 and C++11, %d failed" %
          (len(blocks), len(blocks) - failed, failed))
    return 1 if failed or not blocks else 0


if __name__ == "__main__":
    sys.exit(main())
