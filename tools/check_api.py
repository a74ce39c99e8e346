#!/usr/bin/env python3
"""check_api.py: API documentation and naming lints (CONTRIBUTING.md, Module anatomy and Naming).

    python3 tools/check_api.py [--src DIR] [--readme FILE]

- amalgamate.py's structural lints (directives, includes, prefixes, reserved PR_ names);
- every pr_ function declared in a public region has a doc block with Params:,
  Returns:, Blocks: yes|no, Thread: owner|any and See:;
- Blocks: yes exactly when the last parameter is `int64_t deadline`; those functions
  name PR_ETIMEDOUT and PR_ECANCELED; a parameter called deadline is always that one;
- naming forms: lowercase pr_ functions, types and variables (no _t suffix),
  uppercase PR_/PRISTINE_ constants and macros, pr__/PR__ for impl-only names;
  the only internal functions a public region may declare are the test hooks
  pr__<module>_test_*;
- every PRISTINE_* macro tested by #if/#ifdef/#ifndef/#elif in src/ is in the
  prologue's config table, and every table row is tested somewhere in src/;
- every PR_E* code in base.c's PR__ERRORS list is in README.md's error table, and back.

Prints each problem as path:line: message and exits 1, or prints "check_api: ok".
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import amalgamate as am  # noqa: E402  (the C scanner and the reserved-name list live there)

DOC_FIELDS = [("Params:", r"\bParams:"), ("Returns:", r"\bReturns:"),
              ("Blocks: yes|no", r"\bBlocks:\s*(yes|no)\b"),
              ("Thread: owner|any", r"\bThread:\s*(owner|any)\b"), ("See:", r"\bSee:")]
# PRISTINE_ macros tested in src/ that are not configuration (helper macros go here too).
NOT_CONFIG = {"PRISTINE_H", "PRISTINE_IMPLEMENTATION_INCLUDED"}
# Config macros the generated file tests rather than src/.
TESTED_BY_AMALGAMATE = {"PRISTINE_IMPLEMENTATION"}
LOWER = re.compile(r"^pr_[a-z0-9_]+$")
UPPER = re.compile(r"^PR(ISTINE)?_[A-Z0-9_]+$")


def check_docs(mod, decl, problems):
    doc = decl.doc
    if not doc:
        problems.add(mod.path, decl.line, "%s: no doc comment before its declaration" % decl.name)
        return
    missing = [name for name, rx in DOC_FIELDS if not re.search(rx, doc)]
    if missing:
        problems.add(mod.path, decl.line, "%s: doc block lacks %s" % (decl.name, ", ".join(missing)))
    params = decl.params or []
    deadline_last = bool(params) and params[-1] == ["int64_t", "deadline"]
    for i, p in enumerate(params):
        if p and p[-1] == "deadline" and (i != len(params) - 1 or p != ["int64_t", "deadline"]):
            problems.add(mod.path, decl.line, "%s: the deadline must be the last parameter, "
                         "declared as int64_t deadline" % decl.name)
    if deadline_last:
        for want in ("PR_ETIMEDOUT", "PR_ECANCELED"):
            if want not in doc:
                problems.add(mod.path, decl.line, "%s takes a deadline but its doc block "
                             "does not mention %s" % (decl.name, want))
        if not re.search(r"\bBlocks:\s*yes\b", doc):
            problems.add(mod.path, decl.line, "%s takes a deadline: want 'Blocks: yes'" % decl.name)
    elif re.search(r"\bBlocks:\s*yes\b", doc):
        problems.add(mod.path, decl.line, "%s says 'Blocks: yes' but its last parameter "
                     "is not int64_t deadline" % decl.name)


def check_name(mod, decl, region, public_names, problems):
    name, kind = decl.name, decl.kind
    system = mod.name == "base" and kind == "macro" and name in am.SYSTEM_MACROS
    if region == "impl":  # impl-only names are pr__/PR__; the others complete public ones
        if not (name.startswith(("pr__", "PR__", "PRISTINE_")) or name in public_names or system):
            problems.add(mod.path, decl.line, "%s %s in the impl region: want pr__/PR__ "
                         "(or a name declared in a public region)" % (kind, name))
        return
    if system or not name.startswith(am.PUBLIC_PREFIXES):
        return  # allowed, or already reported by amalgamate's lint
    if kind in ("constant", "macro") and UPPER.match(name) or kind == "macro" and LOWER.match(name):
        return  # PR_ / PRISTINE_ constants and macros, or a function-like API macro
    if kind in ("function", "typedef", "tag", "variable") and LOWER.match(name):
        if kind in ("typedef", "tag") and name.endswith("_t"):
            problems.add(mod.path, decl.line, "type %s: no _t suffix (POSIX reserves it)" % name)
        if kind == "function" and name.startswith("pr__") and not name.startswith(
                ("pr__%s_test_" % mod.name, "pr__test_")):
            problems.add(mod.path, decl.line, "internal function %s declared in a public region "
                         "(only the test hooks pr__%s_test_* may be)" % (name, mod.name))
        return
    want = "PR_<AREA>_<NAME> or PRISTINE_<NAME>" if kind in ("constant", "macro") else "lowercase pr_<name>"
    problems.add(mod.path, decl.line, "%s %s: want the form %s" % (kind, name, want))


def config_table(path, problems):
    """{macro: line} from the prologue's table (rows after the 'macro default scope' header)."""
    rows, inside = {}, False
    for n, line in enumerate(am.read_text(path).split("\n"), 1):
        if re.match(r"\s*macro\s+default\s+scope\b", line):
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            m = re.match(r"\s*(PRISTINE_[A-Z0-9_]+)", line)
            if m:
                rows[m.group(1)] = n
    if not rows:
        problems.add(path, None, "no config table (a 'macro  default  scope' header, then rows)")
    return rows


def check_config(mods, src, problems):
    tested = {}
    for m in mods:
        for region in ("public", "impl"):
            for line, text in am.pp_lines(m, region):
                if re.match(r"#\s*(if|ifdef|ifndef|elif)\b", text):
                    for name in re.findall(r"\bPRISTINE_[A-Z0-9_]+", text):
                        tested.setdefault(name, (m.path, line))
    tested = {k: v for k, v in tested.items()
              if k not in NOT_CONFIG and not k.startswith("PRISTINE_VERSION")}
    prologue = os.path.join(src, "prologue.txt")
    table = config_table(prologue, problems)
    for name, (path, line) in sorted(tested.items()):
        if name not in table:
            problems.add(path, line, "%s is tested here but missing from the config table in %s "
                         "(or add it to NOT_CONFIG in tools/check_api.py)" % (name, os.path.relpath(prologue)))
    for name, line in sorted(table.items()):
        if name not in tested and name not in TESTED_BY_AMALGAMATE:
            problems.add(prologue, line, "%s is in the config table but nothing in src/ tests it" % name)


def check_errors(mods, readme, problems):
    base = [m for m in mods if m.name == "base"]
    codes = {}
    for line, text in am.pp_lines(base[0], "public") if base else []:
        if re.match(r"#\s*define\s+PR__ERRORS\s*\(", text):
            for name, value in re.findall(r"\bX\(\s*(PR_E[A-Z0-9]+)\s*,\s*(-?\d+)", text):
                if value in codes.values():
                    problems.add(base[0].path, line, "%s reuses the value %s" % (name, value))
                codes[name] = value
    if not codes:
        problems.add("src/base.c", None, "no '#define PR__ERRORS(X)' list with X(PR_E..., value, text) entries")
        return
    if not os.path.exists(readme):
        problems.add(readme, None, "missing (it holds the error-code table)")
        return
    table = {}
    for n, line in enumerate(am.read_text(readme).split("\n"), 1):
        m = re.match(r"\s*\|\s*`?(PR_E[A-Z0-9]+)`?\s*\|", line)
        if m:
            table[m.group(1)] = n
    for name in sorted(set(codes) - set(table)):
        problems.add(readme, None, "error table lacks %s (from base.c's PR__ERRORS)" % name)
    for name in sorted(set(table) - set(codes)):
        problems.add(readme, table[name], "%s is in the error table but not in base.c's PR__ERRORS" % name)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "src"))
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    args = ap.parse_args(argv)
    problems = am.Problems()
    mods = am.load(args.src, problems)
    decls = {m.name: {r: am.declarations(getattr(m, r)[1], getattr(m, r)[0]) for r in ("public", "impl")}
             for m in mods}
    public_names = {d.name for m in mods for d in decls[m.name]["public"]}
    for m in mods:
        for region in ("public", "impl"):
            for d in decls[m.name][region]:
                check_name(m, d, region, public_names, problems)
                if region == "public" and d.kind == "function" and d.name.startswith("pr_") \
                        and not d.name.startswith("pr__"):
                    check_docs(m, d, problems)
    check_config(mods, args.src, problems)
    check_errors(mods, args.readme, problems)
    for p in problems:
        print(p)
    print("check_api: %d problem(s)" % len(problems) if problems else "check_api: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
