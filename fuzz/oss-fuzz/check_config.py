#!/usr/bin/env python3
"""Validates msrtrace's ClusterFuzzLite / OSS-Fuzz configuration without Docker or GitHub.

Debian has no actionlint package, so this parses every file with PyYAML (python3-yaml) and
checks what the build and the ClusterFuzzLite actions rely on:

  .github/workflows/cflite_{pr,batch,cron}.yml  ClusterFuzzLite's documented layout: triggers,
      a checkout before build_fuzzers (the actions read .clusterfuzzlite/project.yaml from it),
      build_fuzzers then run_fuzzers with the same sanitizer, the mode each file is for (PR:
      code-change; batch: batch; cron: prune and coverage), balanced ${{ }} expressions,
      5-field cron schedules;
  .clusterfuzzlite/project.yaml and fuzz/oss-fuzz/project/project.yaml  base_os_version
      ubuntu-24-04; the OSS-Fuzz one with homepage, main_repo, primary_contact, sanitizers
      address + undefined (no memory) and fuzzing_engines libfuzzer + afl;
  both Dockerfiles  FROM base-builder:ubuntu-24-04 and the Ubuntu packages the build needs;
  both build.sh entry points  executable, running fuzz/oss-fuzz/build.sh from $SRC/msrtrace.

  fuzz/oss-fuzz/check_config.py [REPO_ROOT]

Prints one line per problem (file: what) and exits 1 if there is any, else prints a summary.
"""
import os
import re
import sys

import yaml

BUILD = "google/clusterfuzzlite/actions/build_fuzzers@v1"
RUN = "google/clusterfuzzlite/actions/run_fuzzers@v1"
BASE_IMAGE = "gcr.io/oss-fuzz-base/base-builder:ubuntu-24-04"
# What fuzz/oss-fuzz/build.sh needs beyond the base image (scripts/deps.sh has the same on Debian).
PACKAGES = ["cmake", "ninja-build", "zip", "libprotobuf-dev", "protobuf-compiler", "libabsl-dev",
            "zlib1g-dev"]
# Modes each workflow must run, and the sanitizers its matrix or steps must cover.
WORKFLOWS = {
    "cflite_pr.yml": ("pull_request", {"code-change"}),
    "cflite_batch.yml": ("schedule", {"batch"}),
    "cflite_cron.yml": ("schedule", {"prune", "coverage"}),
}

problems = []


def problem(path, what):
    problems.append(f"{path}: {what}")


def load(root, rel):
    path = os.path.join(root, rel)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return text, yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        problem(rel, f"cannot read or parse: {e}")
        return None, None


def check_expressions(rel, text):
    for n, line in enumerate(text.splitlines(), 1):
        if line.count("${{") != line.count("}}"):
            problem(rel, f"line {n}: unbalanced ${{{{ }}}} expression")


def resolve(value, matrix):
    """The values a step input takes: a ${{ matrix.x }} expands to the matrix list."""
    m = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", str(value))
    if m:
        return set(map(str, matrix.get(m.group(1), [])))
    return {str(value)}


def check_workflow(root, name, trigger, modes):
    rel = os.path.join(".github", "workflows", name)
    text, wf = load(root, rel)
    if wf is None:
        return
    check_expressions(rel, text)
    if not isinstance(wf, dict) or "jobs" not in wf or "name" not in wf:
        problem(rel, "not a workflow (needs name, on, jobs)")
        return
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true.
    if not isinstance(on, dict) or trigger not in on:
        problem(rel, f"not triggered by {trigger}")
    for entry in (on or {}).get("schedule", []) if isinstance(on, dict) else []:
        if len(str(entry.get("cron", "")).split()) != 5:
            problem(rel, f"cron '{entry.get('cron')}' is not 5 fields")
    if wf.get("permissions") != "read-all":
        problem(rel, "permissions should be read-all (the actions get the token explicitly)")
    seen_modes = set()
    for job_name, job in wf["jobs"].items():
        where = f"job {job_name}"
        if not isinstance(job, dict) or "runs-on" not in job or not job.get("steps"):
            problem(rel, f"{where}: needs runs-on and steps")
            continue
        matrix = job.get("strategy", {}).get("matrix", {})
        steps = job["steps"]
        uses = [s.get("uses", "") for s in steps]
        for i, s in enumerate(steps):
            if ("uses" in s) == ("run" in s):
                problem(rel, f"{where}: step {i + 1} needs exactly one of uses and run")
        if BUILD not in uses or RUN not in uses:
            problem(rel, f"{where}: needs {BUILD} then {RUN}")
            continue
        b, r = uses.index(BUILD), uses.index(RUN)
        checkout = [i for i, u in enumerate(uses) if u.startswith("actions/checkout@")]
        if not checkout or checkout[0] > b:
            problem(rel, f"{where}: no actions/checkout before build_fuzzers (the actions then "
                    "miss .clusterfuzzlite/project.yaml and build on Ubuntu 20.04)")
        if r < b:
            problem(rel, f"{where}: run_fuzzers before build_fuzzers")
        bw, rw = steps[b].get("with", {}) or {}, steps[r].get("with", {}) or {}
        if bw.get("language") != "c++":
            problem(rel, f"{where}: build_fuzzers language should be c++")
        bsan = resolve(bw.get("sanitizer", "address"), matrix)
        rsan = resolve(rw.get("sanitizer", "address"), matrix)
        if bsan != rsan:
            problem(rel, f"{where}: build sanitizer {sorted(bsan)} != run sanitizer {sorted(rsan)}")
        mode = rw.get("mode")
        seen_modes.add(mode)
        if mode == "coverage" and bsan != {"coverage"}:
            problem(rel, f"{where}: coverage mode needs sanitizer: coverage in both steps")
        if mode in ("code-change", "batch") and not {"address", "undefined"} <= bsan:
            problem(rel, f"{where}: {mode} fuzzing should cover address and undefined")
        if "memory" in bsan:
            problem(rel, f"{where}: memory sanitizer needs MSan-built dependencies")
        if not str(rw.get("fuzz-seconds", "")).isdigit():
            problem(rel, f"{where}: run_fuzzers needs numeric fuzz-seconds")
        if "github-token" not in rw:
            problem(rel, f"{where}: run_fuzzers needs github-token")
    if seen_modes != modes:
        problem(rel, f"modes {sorted(map(str, seen_modes))}, want {sorted(modes)}")


def check_project_yaml(root, rel, oss_fuzz):
    _, p = load(root, rel)
    if p is None:
        return
    if p.get("language") != "c++":
        problem(rel, "language should be c++")
    if p.get("base_os_version") != "ubuntu-24-04":
        problem(rel, "base_os_version should be ubuntu-24-04")
    if not oss_fuzz:
        return
    for key in ("homepage", "main_repo", "primary_contact"):
        if not p.get(key):
            problem(rel, f"no {key}")
    if not str(p.get("main_repo", "")).startswith("https://"):
        problem(rel, "main_repo should be an https:// git URL")
    sanitizers = set(p.get("sanitizers") or [])
    if not {"address", "undefined"} <= sanitizers or "memory" in sanitizers:
        problem(rel, f"sanitizers {sorted(sanitizers)}: want address and undefined, not memory")
    engines = set(p.get("fuzzing_engines") or [])
    if not {"libfuzzer", "afl"} <= engines:
        problem(rel, f"fuzzing_engines {sorted(engines)}: want libfuzzer and afl")


def check_dockerfile(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        problem(rel, f"cannot read: {e}")
        return
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if froms != [BASE_IMAGE]:
        problem(rel, f"FROM {froms}: want exactly {BASE_IMAGE}")
    joined = text.replace("\\\n", " ")
    installs = " ".join(re.findall(r"apt-get install ([^&\n]*)", joined)).split()
    for pkg in PACKAGES:
        if pkg not in installs:
            problem(rel, f"does not install {pkg}")
    if not re.search(r"^COPY .*build\.sh \$SRC/$", text, re.M):
        problem(rel, "does not copy its build.sh to $SRC/")


def check_entry(root, rel):
    path = os.path.join(root, rel)
    if not os.access(path, os.X_OK):
        problem(rel, "not executable")
        return
    with open(path, encoding="utf-8") as f:
        if 'exec "$SRC/msrtrace/fuzz/oss-fuzz/build.sh"' not in f.read():
            problem(rel, "does not run $SRC/msrtrace/fuzz/oss-fuzz/build.sh")


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))
    for name, (trigger, modes) in WORKFLOWS.items():
        check_workflow(root, name, trigger, modes)
    check_project_yaml(root, ".clusterfuzzlite/project.yaml", oss_fuzz=False)
    check_project_yaml(root, "fuzz/oss-fuzz/project/project.yaml", oss_fuzz=True)
    for d in (".clusterfuzzlite", "fuzz/oss-fuzz/project"):
        check_dockerfile(root, f"{d}/Dockerfile")
        check_entry(root, f"{d}/build.sh")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"check_config: {len(WORKFLOWS)} workflows, 2 project.yaml, 2 Dockerfiles, "
          "2 entry scripts ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
