#!/usr/bin/env python3
"""Checks that every #include "..." in the tree follows the layer order of docs/design.md.

Usage: scripts/check_layers.py [--root DIR] [--graph] [--self-test]

Every C/C++ file git tracks belongs to one unit (LAYERS below, matched by path: the first
pattern that matches wins). A file may include a file of its own unit and of any unit of a
lower rank, unless its unit lists `only` (then just those) or `never` (then not those). Two
different units of the same rank never include each other. Test files follow the same rules.
An include of a project folder that no unit names is a violation too, so a new folder must be
placed in the table.

Prints each violation as file:line: ... and exits 1 if there is any. With --graph, prints the
unit-level include graph (DOT) instead of checking; with --self-test, checks the checker on
planted violations.
"""

import argparse
import collections
import os
import re
import subprocess
import sys

# (unit, path pattern, rank, options). Lower ranks are lower layers. Keep in step with the
# "Layers" table of docs/design.md.
LAYERS = [
    ("proto", r"proto/", 0, {}),
    ("include", r"include/", 0, {}),
    ("harness/core", r"harness/core/", 1, {}),
    ("harness/trace", r"harness/trace/", 2, {}),
    ("harness/kvm", r"harness/kvm/", 2, {"only": {"harness/core"}}),
    ("harness/replay", r"harness/replay/", 3, {}),
    ("importers", r"importers/", 4, {}),
    ("handlers", r"handlers/", 4, {"only": {"harness/core"}}),
    ("workloads", r"workloads/", 5, {}),
    # The fuzz targets and build-time generators are programs, at the top; the rest of fuzz/ is
    # the oracle and mutator libraries.
    ("fuzz targets",
     r"fuzz/([^/]*_fuzzer|replay_main|standalone_main|seed_gen|dict_gen|[^/]*_hooks)\.cc$", 8, {}),
    ("fuzz", r"fuzz/", 5, {}),
    ("triage", r"triage/", 6, {}),
    ("tools", r"tools/", 7, {}),
    ("capi", r"capi/", 7, {}),
    # Programs: they link libraries, never the command line (bench/) or each other.
    ("bench", r"bench/", 8, {"never": {"tools"}}),
    ("examples", r"examples/", 8, {}),
]

SOURCE_SUFFIXES = (".cc", ".h", ".c")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def unit_of(path):
    for name, pattern, rank, options in LAYERS:
        if re.match(pattern, path):
            return name, rank, options
    return None


def include_target(include, including_file, top_dirs, exists):
    """The repository path an include names, or None for a header outside the project."""
    first = include.split("/", 1)[0]
    if "/" not in include:  # "c_device.h": next to the including file.
        return os.path.join(os.path.dirname(including_file), include)
    if first == "msrtrace" and exists(os.path.join("include", include)):
        return os.path.join("include", include)
    if first in top_dirs:
        return include
    return None


def check(sources, exists):
    """(violations, edges) for `sources`, a dict of repository path -> text."""
    top_dirs = {p.split("/", 1)[0] for p in sources if "/" in p}
    top_dirs.add("proto")  # Generated headers (proto/trace.pb.h) live in the build tree.
    violations = []
    edges = collections.Counter()
    for path in sorted(sources):
        own = unit_of(path)
        if own is None:
            violations.append(f"{path}:1: the file's folder is not in the layer table "
                              "(scripts/check_layers.py LAYERS, docs/design.md)")
            continue
        own_name, own_rank, options = own
        for lineno, line in enumerate(sources[path].split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            target = include_target(m.group(1), path, top_dirs, exists)
            if target is None:
                continue
            dep = unit_of(target)
            if dep is None:
                violations.append(f"{path}:{lineno}: includes \"{m.group(1)}\", whose folder "
                                  "is not in the layer table")
                continue
            dep_name, dep_rank, _ = dep
            if dep_name == own_name:
                continue
            edges[(own_name, dep_name)] += 1
            why = None
            if "only" in options and dep_name not in options["only"]:
                why = f"{own_name} may include only {', '.join(sorted(options['only']))}"
            elif dep_name in options.get("never", ()):
                why = f"{own_name} never includes {dep_name}"
            elif dep_rank >= own_rank:
                why = f"{dep_name} (rank {dep_rank}) is not below {own_name} (rank {own_rank})"
            if why:
                violations.append(f"{path}:{lineno}: includes \"{m.group(1)}\": {why}")
    return violations, edges


def self_test():
    """The checker finds planted violations and accepts downward includes."""
    cases = [
        ({"harness/core/a.h": '#include "handlers/b.h"\n', "handlers/b.h": ""},
         ["harness/core/a.h:1:"]),
        ({"handlers/a.cc": '#include <vector>\n#include "harness/replay/r.h"\n',
          "harness/replay/r.h": ""}, ["handlers/a.cc:2:"]),
        ({"harness/kvm/k.cc": '#include "harness/trace/t.h"\n', "harness/trace/t.h": ""},
         ["harness/kvm/k.cc:1:"]),
        ({"importers/i.cc": '#include "harness/kvm/k.h"\n', "harness/kvm/k.h": ""}, []),
        ({"importers/i.cc": '#include "handlers/h.h"\n', "handlers/h.h": ""},
         ["importers/i.cc:1:"]),
        ({"bench/b.cc": '#include "tools/command.h"\n', "tools/command.h": ""}, ["bench/b.cc:1:"]),
        ({"fuzz/oracles.cc": '#include "triage/d.h"\n', "triage/d.h": ""}, ["fuzz/oracles.cc:1:"]),
        ({"fuzz/x_fuzzer.cc": '#include "triage/d.h"\n', "triage/d.h": ""}, []),
        ({"tools/t.cc": '#include "harness/core/c.h"\n#include "absl/s.h"\n#include "x.h"\n',
          "harness/core/c.h": ""}, []),
        ({"newdir/n.cc": ""}, ["newdir/n.cc:1:"]),
        ({"tools/t.cc": '#include "newdir/n.h"\n', "newdir/n.h": ""},
         ["newdir/n.h:1:", "tools/t.cc:1:"]),
    ]
    failed = 0
    for sources, expected in cases:
        violations, _ = check(sources, lambda p: False)
        got = [v.split(" ", 1)[0] for v in violations]
        if got != expected:
            print(f"self-test FAILED: {sorted(sources)}: expected {expected}, got {violations}")
            failed += 1
    print(f"check_layers self-test: {len(cases) - failed} of {len(cases)} cases pass")
    return 1 if failed else 0


def tracked_files(root):
    """The files git tracks under `root`; outside a checkout, every file but build trees."""
    git = subprocess.run(["git", "-C", root, "ls-files"], capture_output=True, text=True,
                         check=False)
    if git.returncode == 0:
        return git.stdout.split("\n")
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")
                   and not os.path.exists(os.path.join(d, x, "CMakeCache.txt"))]
        files += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    parser.add_argument("--graph", action="store_true", help="print the unit graph (DOT)")
    parser.add_argument("--self-test", action="store_true", help="check the checker")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    root = os.path.abspath(args.root)
    files = tracked_files(root)
    sources = {}
    for f in files:
        if f.endswith(SOURCE_SUFFIXES):
            with open(os.path.join(root, f), encoding="utf-8", errors="replace") as src:
                sources[f] = src.read()
    violations, edges = check(sources, lambda p: os.path.exists(os.path.join(root, p)))
    if args.graph:
        print("digraph layers {")
        for (a, b), n in sorted(edges.items()):
            print(f'  "{a}" -> "{b}" [label={n}];')
        print("}")
        return 0
    for v in violations:
        print(v)
    if violations:
        print(f"check_layers: {len(violations)} include(s) against the layer order "
              "(docs/design.md, Layers)")
        return 1
    print(f"check_layers: {len(sources)} files, {sum(edges.values())} includes across units, "
          "all downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
