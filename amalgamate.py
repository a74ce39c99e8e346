#!/usr/bin/env python3
"""amalgamate.py: build pristine.h from src/ (CONTRIBUTING.md, Layout and Module anatomy).

    python3 amalgamate.py                      write pristine.h
    python3 amalgamate.py --check              compare with the committed pristine.h; never writes
    python3 amalgamate.py --lines -o build/pristine.h
                                               add #line directives (local debugging only)
    python3 amalgamate.py --src DIR            read the modules from DIR (to test this tool)

The structural lints run on every invocation; any finding exits with status 2.
They include the private-name lint: each module's file-scope pr__/PR__ names carry
its own prefix (pr__<module>_ / PR__<MODULE>_; base's any prefix no module claims),
and a module uses another's private names only where that module's opening comment
offers them ("Offers to the modules after it: ..."). CONTRIBUTING.md, Naming.
The output depends only on MODULES, src/ and LICENSE; src/history.txt, the revision
history, is emitted last. Standard library only.
tools/check_api.py imports this file for its C scanner and the reserved-name list.
"""
import argparse
import difflib
import os
import re
import signal
import sys
from collections import namedtuple

# The manifest: module order is dependency order; a module uses only the ones before it
# (CONTRIBUTING.md, Layout).
MODULES = ["base", "time", "buf", "json", "url", "sse", "coro", "sched", "sync", "future", "retry", "net", "tls", "http", "proxy", "client", "eventsource", "session", "rfuture", "ds", "ds_read", "ds_producer", "ds_consumer", "telemetry"]

ROOT = os.path.dirname(os.path.abspath(__file__))
NOTICE = "generated from src/ by amalgamate.py; edit src/, not this file"

# Names a file-scope declaration may start with (CONTRIBUTING.md, Naming).
PUBLIC_PREFIXES = ("pr_", "PR_", "PRISTINE_")
# System macros only base.c may define: feature-test macros (they must precede the
# system headers) and portability shims.
SYSTEM_MACROS = {"_GNU_SOURCE", "_DEFAULT_SOURCE", "_POSIX_C_SOURCE", "_XOPEN_SOURCE",
                 "_DARWIN_C_SOURCE", "MAP_ANONYMOUS"}
# PR_ names taken by <linux/prctl.h> and NSPR (CONTRIBUTING.md, Naming). This is the one copy.
RESERVED_PREFIXES = (
    "PR_SET_", "PR_GET_", "PR_SCHED_", "PR_TASK_", "PR_SYS_", "PR_TIMING_", "PR_ENDIAN_",
    "PR_FP_", "PR_SPEC_", "PR_MTE_", "PR_CAP", "PR_MCE_", "PR_LOG_", "PR_POLL_", "PR_IO_",
    "PR_CONNECT_", "PR_SHUTDOWN_", "PR_INTERVAL_", "PR_INIT_", "PR_INVALID_", "PR_NOT_",
    "PR_NO_", "PR_AF_", "PR_AI_", "PR_STATUS", "PR_EXCL", "PR_EXPORT", "PR_EXTERN", "PR_END_")
RESERVED_NAMES = {"PR_VERSION", "PR_ASSERT", "PR_MIN", "PR_MAX", "PR_TRUE", "PR_FALSE",
                  "PR_SUCCESS", "PR_FAILURE", "PR_LOG"}


def reserved(name):
    """True for a PR_ name that collides with <linux/prctl.h> or NSPR."""
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


# ---------------------------------------------------------------- a small C scanner

Tok = namedtuple("Tok", "kind text line")
TOKEN = re.compile(r"""
    (?P<comment> /\*.*?\*/ | //[^\n]* )
  | (?P<pp> ^[ ]*\#(?: \\\n | /\*.*?\*/ | "(?:\\.|[^"\\\n])*" | [^\n] )* )
  | (?P<str> "(?:\\.|[^"\\\n])*" | '(?:\\.|[^'\\\n])*' )
  | (?P<id> [A-Za-z_]\w* )
  | (?P<num> \.?[0-9](?:[eEpP][+-]|[\w.])* )
  | (?P<space> [ \t\r\f\v]+ | \n )
  | (?P<punct> . )
""", re.S | re.M | re.X)


def tokenize(lines, first_line):
    """Tokens of a region (lines numbered from first_line); whitespace dropped."""
    toks, line = [], first_line
    for m in TOKEN.finditer("\n".join(lines)):
        if m.lastgroup != "space":
            toks.append(Tok(m.lastgroup, m.group().strip(), line))
        line += m.group().count("\n")
    return toks


Stmt = namedtuple("Stmt", "toks doc body")  # body: a function definition


def statements(toks):
    """Split file-scope code into declarations. doc is the comment just before each."""
    out, cur, doc, depth, opener = [], [], [], 0, ""
    for t in toks:
        if t.kind == "comment":
            if not cur:  # consecutive // lines form one block; otherwise the last comment wins
                joined = doc and t.text.startswith("//") and doc[-1].text.startswith("//") \
                    and t.line == doc[-1].line + 1
                doc = doc + [t] if joined else [t]
            continue
        if t.kind == "pp":
            continue
        cur.append(t)
        if t.text == "{":
            if depth == 0:
                opener = cur[-2].text if len(cur) > 1 else ""
            depth += 1
        elif t.text == "}":
            depth -= 1
            if depth == 0 and opener == ")":
                out.append(Stmt(cur, "\n".join(c.text for c in doc), True))
                cur, doc = [], []
        elif t.text == ";" and depth == 0:
            out.append(Stmt(cur, "\n".join(c.text for c in doc), False))
            cur, doc = [], []
    if cur:
        out.append(Stmt(cur, "", False))
    return out


Decl = namedtuple("Decl", "kind name line static definition params doc")
TAG_WORDS = ("struct", "union", "enum")
DEFINE = re.compile(r"#\s*define\s+(\w+)(\(([^)]*)\))?")


def declarator(toks):
    """(name token, index of its parameter list or None) of a file-scope declaration."""
    texts = [t.text for t in toks]
    depth = 0
    for i, x in enumerate(texts):  # a function pointer: ( * name ) outside any parentheses
        if depth == 0 and texts[i:i + 2] == ["(", "*"] and i + 3 < len(toks) \
                and toks[i + 2].kind == "id" and texts[i + 3] == ")":
            return toks[i + 2], None
        depth += {"(": 1, ")": -1}.get(x, 0)
    last, i = None, 0
    while i < len(toks) and texts[i] not in ("=", "[", ":", ";", "{}", ","):
        t = toks[i]
        if t.kind == "id" and texts[i + 1:i + 2] == ["("]:
            if not (t.text.isupper() or t.text.startswith("__")):  # not a macro, asm or attribute
                return t, i + 1
        elif t.kind == "id":
            last = t
        i = skip_parens(texts, i + 1) if texts[i + 1:i + 2] == ["("] else i + 1
    return last, None


def skip_parens(texts, i):
    """Index just past the parenthesised group that opens at texts[i]."""
    depth = 0
    while i < len(texts):
        depth += {"(": 1, ")": -1}.get(texts[i], 0)
        i += 1
        if depth == 0:
            break
    return i


def params_of(toks, i):
    """The parameters of the list opening at toks[i], each a list of token texts."""
    end = skip_parens([t.text for t in toks], i) - 1
    out, cur, depth = [], [], 0
    for t in toks[i + 1:end]:
        if t.text == "," and depth == 0:
            out.append(cur)
            cur = []
            continue
        depth += {"(": 1, ")": -1}.get(t.text, 0)
        cur.append(t.text)
    return out + [cur] if cur else out


def enum_constants(toks, i):
    """Constants of the enum body after toks[i] == 'enum': a name after '{', ',' or ')'
    (an X-macro expansion) and before '=', ',' or '}'."""
    j = i + 1
    while j < len(toks) and j <= i + 2 and toks[j].text != "{":
        j += 1
    if j >= len(toks) or toks[j].text != "{":
        return []
    out, depth = [], 0
    for k in range(j + 1, len(toks)):
        t = toks[k]
        if depth == 0 and t.text == "}":
            break
        if depth == 0 and t.kind == "id" and toks[k - 1].text in ("{", ",", ")") \
                and k + 1 < len(toks) and toks[k + 1].text in ("=", ",", "}"):
            out.append(Decl("constant", t.text, t.line, False, False, None, ""))
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(t.text, 0)
    return out


def outer_tokens(toks):
    """A statement without its brace groups (each folded into one "{}" token) and
    without tag type specifiers ("struct X", "struct {...}", "struct X {...}")."""
    top, depth = [], 0
    for t in toks:
        if t.text == "{":
            if depth == 0:
                top.append(Tok("punct", "{}", t.line))
            depth += 1
        elif t.text == "}":
            depth -= 1
        elif depth == 0:
            top.append(t)
    out, i = [], 0
    while i < len(top):
        if top[i].text in TAG_WORDS:
            i += 1 + (i + 1 < len(top) and top[i + 1].kind == "id")
            i += i < len(top) and top[i].text == "{}"
            continue
        out.append(top[i])
        i += 1
    return out


def declarations(lines, first_line):
    """Every file-scope name a region declares: macros, X-macro entries, tags,
    enum constants, typedefs, functions and variables."""
    toks = tokenize(lines, first_line)
    out = []
    for t in toks:
        m = DEFINE.match(t.text) if t.kind == "pp" else None
        if m:
            out.append(Decl("macro", m.group(1), t.line, False, False, None, ""))
            if m.group(3) and m.group(3).strip() == "X":  # X-macro list: X(NAME, ...) entries
                for name in re.findall(r"\bX\(\s*([A-Za-z_]\w*)", t.text[m.end():]):
                    out.append(Decl("constant", name, t.line, False, False, None, ""))
    for st in statements(toks):
        s = st.toks
        for i, t in enumerate(s):  # tags and enum constants have file scope at any depth
            if t.text in TAG_WORDS and i + 1 < len(s) and s[i + 1].kind == "id":
                nxt = s[i + 2].text if i + 2 < len(s) else ""
                if nxt == "{" or (nxt == ";" and i == 0):
                    out.append(Decl("tag", s[i + 1].text, s[i + 1].line, False, False, None, ""))
            if t.text == "enum":
                out += enum_constants(s, i)
        spec = outer_tokens(s)
        name, plist = declarator(spec)
        if name is None or name.text in ("typedef", "static", "extern", "inline", "const"):
            continue
        words = {t.text for t in spec}
        kind = "typedef" if "typedef" in words else "function" if plist is not None else "variable"
        params = params_of(spec, plist) if plist is not None else None
        out.append(Decl(kind, name.text, name.line, "static" in words, st.body, params, st.doc))
        if kind != "function":  # int a, *b; declares b too
            out += [Decl(kind, t.text, t.line, "static" in words, False, None, st.doc)
                    for t in more_declarators(spec)]
    return out


def more_declarators(spec):
    """The names after the top-level commas of a declaration (int a, *b, c[4] = {}: b, c)."""
    out, depth, i = [], 0, 0
    while i < len(spec):
        x = spec[i].text
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(x, 0)
        if x == "," and depth == 0:
            j = i + 1
            while j < len(spec) and (spec[j].text in ("*", "(", "const", "volatile", "restrict")):
                j += 1
            if j < len(spec) and spec[j].kind == "id":
                out.append(spec[j])
        i += 1
    return out


# ---------------------------------------------------------------- reading the modules

DIRECTIVE = re.compile(r"^// @pristine:(\S*)(.*)$")
ORDER = ["module", "public", "impl"]
Module = namedtuple("Module", "name path title public impl")  # regions: (first line, [lines])


class Problems(list):
    def add(self, path, line, msg):
        path = os.path.relpath(path)
        self.append("%s:%s: %s" % (path, line, msg) if line else "%s: %s" % (path, msg))


def trim(lines, first):
    """Drop leading and trailing blank lines; returns (number of the first line, lines)."""
    lo, hi = 0, len(lines)
    while lo < hi and not lines[lo].strip():
        lo += 1
    while hi > lo and not lines[hi - 1].strip():
        hi -= 1
    return first + lo, lines[lo:hi]


def read_text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().replace("\r\n", "\n")


def read_module(src, name, problems):
    path = os.path.join(src, name + ".c")
    lines = read_text(path).split("\n")
    found = {k: [] for k in ORDER}
    for i, line in enumerate(lines):
        if "\t" in line:
            problems.add(path, i + 1, "tab character (indent with spaces)")
        lines[i] = line = line.rstrip()
        m = DIRECTIVE.match(line)
        if m and m.group(1) in found:
            found[m.group(1)].append(i)
        elif m:
            problems.add(path, i + 1, "unknown directive '// @pristine:%s'" % m.group(1))
    ok = True
    for k in ORDER:
        if len(found[k]) != 1:
            where = ", ".join(str(i + 1) for i in found[k])
            problems.add(path, None, "directive '// @pristine:%s' %s" % (
                k, "missing" if not found[k] else "duplicated (lines %s)" % where))
            ok = False
    if not ok:
        return None
    mod, pub, imp = (found[k][0] for k in ORDER)
    if not mod < pub < imp:
        problems.add(path, None, "directives out of order (module line %d, public line %d, impl "
                     "line %d): want module, public, impl" % (mod + 1, pub + 1, imp + 1))
        return None
    if any(l.strip() for l in lines[:mod]):
        problems.add(path, 1, "text before '// @pristine:module' would be dropped")
    m = re.match(r"^// @pristine:module (\S+) - (\S.*)$", lines[mod])
    if not m or m.group(1) != name:
        problems.add(path, mod + 1, "want '// @pristine:module %s - <one-line summary>'" % name)
        return None
    if "*/" in m.group(2):
        problems.add(path, mod + 1, "the summary must not contain '*/'")
    return Module(name, path, m.group(2), trim(lines[pub + 1:imp], pub + 2),
                  trim(lines[imp + 1:], imp + 2))


def load(src, problems):
    """Read and lint every module of the manifest; returns the readable ones."""
    on_disk = {f[:-2] for f in os.listdir(src) if f.endswith(".c")} if os.path.isdir(src) else set()
    for name in sorted(on_disk - set(MODULES)):
        problems.add(os.path.join(src, name + ".c"), None, "not in the manifest (MODULES in amalgamate.py)")
    mods = []
    for name in MODULES:
        if name not in on_disk:
            problems.add(os.path.join(src, name + ".c"), None, "listed in MODULES but missing")
        else:
            mod = read_module(src, name, problems)
            if mod:
                mods.append(mod)
    lint(mods, problems)
    return mods


def pp_lines(mod, region):
    """(line number, text) of the preprocessor lines of one region, comments stripped."""
    first, lines = getattr(mod, region)
    return [(t.line, t.text) for t in tokenize(lines, first) if t.kind == "pp"]


def named_ok(mod, decl):
    """A file-scope name must start with pr_, PR_ or PRISTINE_ (or be base's system macro)."""
    return decl.name.startswith(PUBLIC_PREFIXES) or (
        mod.name == "base" and decl.kind == "macro" and decl.name in SYSTEM_MACROS)


# ---------------------------------------------------------------- private names

PRIVATE = re.compile(r"\b(?:pr__|PR__)\w+")
# A module's opening comment lists the privates it lets the modules after it use:
#   Offers to the modules after it: pr__http_media_is, pr__http_fields_*
# (exact names, or a prefix ending in * that matches any rest, even an empty one;
# separated by commas; a line ending in a comma, or the label alone, continues on the
# next comment line; a final period is allowed). CONTRIBUTING.md, Module anatomy.
OFFERS = re.compile(r"Offers to the modules after it:(.*)$")
OFFER_ITEM = re.compile(r"^(?:pr__|PR__)\w+\*?$")


def is_private(name):
    return name.startswith(("pr__", "PR__"))


def private_prefix(module, name):
    """The prefix a private name of module must have, in the name's case."""
    return ("pr__%s_" % module) if name.startswith("pr__") else ("PR__%s_" % module.upper())


def claims(module, name):
    """True when module's prefix claims the private name: pr__<module>_... or the bare
    pr__<module> (PR__<MODULE>_... for the upper-case ones)."""
    pfx = private_prefix(module, name)
    return name.startswith(pfx) or name == pfx[:-1]


def prefix_owner(name, modules):
    """The module whose prefix claims a private name (the longest one: with modules ds
    and ds_read, pr__ds_read_x is ds_read's), or None."""
    owners = [m for m in modules if claims(m, name)]
    return max(owners, key=len) if owners else None


def strip_comment(line):
    """A comment line without its decoration (' * ', '// ')."""
    return re.sub(r"^\s*(?://+|/?\*+(?!/))?\s?", "", line).rstrip()


def offers(mod):
    """[(line, item)] of the module's 'Offers to the modules after it:' lists, and
    [(line, message)] of the malformed or misplaced ones."""
    items, bad = [], []
    first, lines = mod.public
    toks = tokenize(lines, first)
    opening = None
    if toks and toks[0].kind == "comment":
        opening = (toks[0].line, toks[0].line + toks[0].text.count("\n"))
    for region in ("public", "impl"):
        first, lines = getattr(mod, region)
        i = 0
        while i < len(lines):
            m = OFFERS.search(lines[i])
            start = first + i
            i += 1
            if not m:
                continue
            if region != "public" or not opening or not opening[0] <= start <= opening[1]:
                bad.append((start, "an 'Offers to the modules after it:' line belongs in the "
                            "module's opening comment (the first comment of its public region)"))
                continue
            text = m.group(1).strip()
            while (not text or text.endswith(",")) and i < len(lines) and first + i <= opening[1]:
                more = strip_comment(lines[i]).strip()
                text += " " + (more[:-2].strip() if more.endswith("*/") else more)
                i += 1
            text = (text[:-2].strip() if text.endswith("*/") else text).rstrip(".")
            for item in (x.strip() for x in text.split(",")):
                if OFFER_ITEM.match(item):
                    items.append((start, item))
                else:
                    bad.append((start, "'%s' in the Offers list: want pr__name / PR__NAME or a "
                                "prefix ending in * (comma-separated; a line ending in a comma "
                                "continues)" % item))
    return items, bad


def used_names(mod):
    """{private name: first line} of the pr__/PR__ identifiers a module's code uses
    (comments and string literals do not count; preprocessor lines do)."""
    out = {}
    for region in ("public", "impl"):
        first, lines = getattr(mod, region)
        for t in tokenize(lines, first):
            if t.kind == "id" and is_private(t.text):
                out.setdefault(t.text, t.line)
            elif t.kind == "pp":
                text = re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"", " ", t.text, flags=re.S)
                for name in PRIVATE.findall(text):
                    out.setdefault(name, t.line)
    return out


def lint_privates(mods, decls, problems):
    """(a) every file-scope private of a module starts with its own prefix (base: with
    one no module claims); (b) a module uses another's private only when that one
    offers it (base's privates are offered to all), and only from a module before it."""
    names = [m.name for m in mods]
    order = {n: i for i, n in enumerate(names)}
    owner, own = {}, {m.name: set() for m in mods}
    for m in mods:
        seen = set()
        for d in sorted(decls[m.name][0] + decls[m.name][1], key=lambda d: d.line):
            if not is_private(d.name):
                continue
            owner.setdefault(d.name, m.name)
            own[m.name].add(d.name)
            if d.name in seen:
                continue
            seen.add(d.name)
            claimed = prefix_owner(d.name, names)
            if m.name == "base" and claimed not in (None, "base"):
                problems.add(m.path, d.line, "base's private %s %s uses module %s's prefix %s: give "
                             "it a name no module's prefix claims, or move it to %s "
                             "(CONTRIBUTING.md, Naming)" % (d.kind, d.name, claimed,
                                                            private_prefix(claimed, d.name), claimed))
            elif m.name != "base" and claimed != m.name:
                whose = " (that is module %s's prefix)" % claimed if claimed else ""
                problems.add(m.path, d.line, "private %s %s: %s's private names start with %s%s; "
                             "rename it to %s... (CONTRIBUTING.md, Naming)"
                             % (d.kind, d.name, m.name, private_prefix(m.name, d.name), whose,
                                private_prefix(m.name, d.name)))
    offered = {}
    for m in mods:
        items, bad = offers(m)
        for line, msg in bad:
            problems.add(m.path, line, msg)
        exact, patterns = set(), []
        for line, item in items:
            if item.endswith("*"):
                if not any(n.startswith(item[:-1]) for n in own[m.name]):
                    problems.add(m.path, line, "the Offers list names %s, which matches none of %s's "
                                 "private names: drop it or fix it" % (item, m.name))
                patterns.append(item[:-1])
            else:
                if item not in own[m.name]:
                    problems.add(m.path, line, "the Offers list names %s, which is not a private name "
                                 "%s declares: drop it or fix it" % (item, m.name))
                exact.add(item)
        offered[m.name] = (exact, patterns)
    for m in mods:
        for name, line in sorted(used_names(m).items(), key=lambda kv: (kv[1], kv[0])):
            theirs = owner.get(name)
            if theirs in (None, m.name, "base") or name in own[m.name]:
                continue
            if order[theirs] > order[m.name]:
                problems.add(m.path, line, "uses %s, a private of %s, which comes after %s in MODULES "
                             "(a module uses only the modules before it)" % (name, theirs, m.name))
                continue
            exact, patterns = offered[theirs]
            if name not in exact and not any(name.startswith(p) for p in patterns):
                problems.add(m.path, line, "uses %s, a private of %s that %s does not offer: add it to "
                             "the 'Offers to the modules after it:' line of %s's opening comment, or "
                             "use %s's public API (CONTRIBUTING.md, Module anatomy)"
                             % (name, theirs, theirs, os.path.relpath(
                                 os.path.join(os.path.dirname(m.path), theirs + ".c")), theirs))


def lint(mods, problems):
    decls = {m.name: (declarations(m.public[1], m.public[0]), declarations(m.impl[1], m.impl[0]))
             for m in mods}
    lint_privates(mods, decls, problems)
    public_funcs = {d.name for pub, _ in decls.values() for d in pub if d.kind == "function"}
    for m in mods:
        pub, imp = decls[m.name]
        for region in ("public", "impl"):
            for line, text in pp_lines(m, region):
                if m.name != "base" and re.match(r"#\s*include\b", text):
                    problems.add(m.path, line, "#include outside base.c (base.c holds every include)")
        for d in pub + imp:
            if reserved(d.name):
                problems.add(m.path, d.line, "%s is in a reserved PR_ sub-prefix "
                             "(taken by <linux/prctl.h> or NSPR; CONTRIBUTING.md, Naming)" % d.name)
        for d in pub:
            if not named_ok(m, d):
                problems.add(m.path, d.line, "%s %s in the public region must start with "
                             "pr_, PR_ or PRISTINE_" % (d.kind, d.name))
        for d in imp:
            if d.kind == "function" and d.definition and not d.static and d.name not in public_funcs:
                problems.add(m.path, d.line, "non-static function %s is not declared in any public "
                             "region (make it static, or declare it public)" % d.name)


# ---------------------------------------------------------------- writing pristine.h

def comment_block(path, text, problems):
    if "/*" in text or "*/" in text:
        problems.add(path, None, "must not contain '/*' or '*/' (it is emitted inside a comment)")
    if "\t" in text:
        problems.add(path, None, "tab character (use spaces)")
    return ["/*"] + text.rstrip("\n").split("\n") + ["*/"]


def version(base, problems):
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        found = re.findall(r"^#\s*define\s+PRISTINE_VERSION_%s\s+(\d+)\s*$" % part,
                           "\n".join(base.public[1]), re.M)
        if len(found) != 1:
            problems.add(base.path, None, "want exactly one '#define PRISTINE_VERSION_%s <n>' "
                         "in the public region" % part)
        parts.append(found[0] if found else "?")
    return ".".join(parts)


def prologue(src, mods, problems):
    path = os.path.join(src, "prologue.txt")
    if not os.path.exists(path):
        problems.add(path, None, "missing")
        return []
    width = max(len(m.name) for m in mods) + 2
    toc = ["%-*s %-*s %s" % (width, m.name, width + 2, ">>" + m.name, m.title) for m in mods]
    base = [m for m in mods if m.name == "base"]
    subst = {"{{VERSION}}": version(base[0], problems) if base else "?", "{{NOTICE}}": NOTICE}
    out = []
    for line in read_text(path).split("\n"):
        if "{{TOC}}" in line:
            indent = line[:line.index("{{TOC}}")]
            out += [indent + row for row in toc]
            continue
        for key, value in subst.items():
            line = line.replace(key, value)
        if "{{" in line:
            problems.add(path, None, "unknown placeholder in: " + line.strip())
        out.append(line)
    return comment_block(path, "\n".join(out), problems)


def include_block_end(lines):
    """Index just past base's #include block: after the last #include, once any
    #if around it is closed. The extern "C" opener goes there."""
    depth, end, last = 0, 0, -1
    for i, line in enumerate(lines):
        if re.match(r"\s*#\s*include\b", line):
            last = i
        if re.match(r"\s*#\s*if", line):
            depth += 1
        elif re.match(r"\s*#\s*endif", line):
            depth -= 1
        if last >= 0 and depth == 0 and end <= last:
            end = i + 1
    return end


def amalgamate(src, with_lines=False):
    """Returns (text of pristine.h, problems)."""
    problems = Problems()
    mods = load(src, problems)
    if problems or len(mods) != len(MODULES):
        return None, problems

    out = []

    def region(mod, first, lines, anchor):
        if anchor:
            out.extend(["", "/* ==== %s: %s ==== >>%s */" % (mod.name, mod.title, anchor)])
        if with_lines and lines:
            out.append('#line %d "src/%s.c"' % (first, mod.name))
        out.extend(lines)

    out += prologue(src, mods, problems)
    out += ["", "#ifndef PRISTINE_H", "#define PRISTINE_H"]
    for m in mods:
        first, lines = m.public
        if m.name != "base":
            region(m, first, lines, m.name)
            continue
        # base's public region holds the library's #include lines, which must not sit
        # inside extern "C"; so the C++ opener goes right after that include block and
        # everything declared after it (base's declarations included) has C linkage.
        cut = include_block_end(lines)
        region(m, first, lines[:cut], "base")
        out += ["", "/* Everything below has C linkage in C++ (the #includes above stay outside). */",
                "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
        region(m, *trim(lines[cut:], first + cut), anchor=None)
    out += ["", "#ifdef __cplusplus", "}", "#endif", "#endif /* PRISTINE_H */", "",
            "#if defined(PRISTINE_IMPLEMENTATION) && !defined(PRISTINE_IMPLEMENTATION_INCLUDED)",
            "#define PRISTINE_IMPLEMENTATION_INCLUDED"]
    for m in mods:
        region(m, m.impl[0], m.impl[1], m.name + ".impl")
    internal = sorted({n for m in mods for r in ("public", "impl") for _, t in pp_lines(m, r)
                       for n in re.findall(r"^#\s*define\s+(PR__\w+)", t)})
    out += ["", "/* ==== end of the implementation: undefine the internal PR__ macros ====",
            "   (test builds keep them: the tests share this translation unit and use them) */",
            "#ifndef PRISTINE_TESTING"]
    out += ["#undef " + n for n in internal]
    out += ["#endif", "#endif /* PRISTINE_IMPLEMENTATION */", ""]
    license_path = os.path.join(ROOT, "LICENSE")
    if os.path.exists(license_path):
        out += comment_block(license_path, read_text(license_path), problems)
    else:
        problems.add(license_path, None, "missing")
    history_path = os.path.join(src, "history.txt")  # the revision history comes last (stb's place)
    if os.path.exists(history_path):
        out += [""] + comment_block(history_path, read_text(history_path), problems)
    else:
        problems.add(history_path, None, "missing")
    text = "\n".join(l.rstrip() for l in out).rstrip("\n") + "\n"
    return (None if problems else text), problems


def check(path, new):
    """--check: compare with the file on disk; print the verdict; return the exit status."""
    old = read_text(path) if os.path.exists(path) else None
    if old == new:
        print("pristine.h is up to date")
        return 0
    if old is None:
        print("%s does not exist" % path)
    else:
        a, b = old.split("\n"), new.split("\n")
        n = next(i for i in range(max(len(a), len(b)) + 1)
                 if i >= len(a) or i >= len(b) or a[i] != b[i])
        print("first difference at line %d:" % (n + 1))
        print("  committed: %s" % (a[n] if n < len(a) else "<end of file>"))
        print("  from src/: %s" % (b[n] if n < len(b) else "<end of file>"))
        diff = list(difflib.unified_diff(a, b, "pristine.h (committed)", "pristine.h (from src/)",
                                         lineterm="", n=2))
        print("\n".join(diff[:40]))
        if len(diff) > 40:
            print("... (%d more diff lines)" % (len(diff) - 40))
    print("pristine.h is stale: run python3 amalgamate.py")
    return 1


def main(argv):
    ap = argparse.ArgumentParser(description="Build pristine.h from src/.")
    ap.add_argument("--check", action="store_true", help="compare with the committed file; never write")
    ap.add_argument("--lines", action="store_true", help='emit #line N "src/<mod>.c" after every banner')
    ap.add_argument("-o", dest="out", default=os.path.join(ROOT, "pristine.h"), help="output path")
    ap.add_argument("--src", default=os.path.join(ROOT, "src"), help="module directory (default src/)")
    args = ap.parse_args(argv)
    text, problems = amalgamate(args.src, args.lines)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print("amalgamate.py: %d problem(s); nothing written" % len(problems), file=sys.stderr)
        return 2
    if args.check:
        return check(args.out, text)
    if not os.path.exists(args.out) or read_text(args.out) != text:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    print("wrote %s (%d lines)" % (os.path.relpath(args.out), text.count("\n")))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    sys.exit(main(sys.argv[1:]))
