#!/usr/bin/env python3
"""The runtime stage of deploy/Dockerfile installs what the binary links, and
nothing it does not: every library `ldd` shows must come from a Debian package
that the runtime stage installs, one of their dependencies, or the base image
(priority required); every library package the stage installs must provide one
of those libraries.

Usage: test_dockerfile_libs.py PSEUDOSTREAM_BINARY. Exit 77 (skip) off Debian.
"""
import os
import re
import shutil
import subprocess
import sys

SRC = os.environ.get("PS_SOURCE_DIR", os.getcwd())
BINARY = sys.argv[1]
# Sanitizer builds link these from gcc; a release image never carries them.
SANITIZER_RUNTIMES = re.compile(r"lib(asan|ubsan|lsan|tsan)\.so")
# Installed for TLS to the brokers, not for a shared library.
NOT_LIBRARIES = {"ca-certificates"}

if not shutil.which("dpkg-query") or not shutil.which("ldd"):
    print("SKIP: needs dpkg and ldd (a Debian system)")
    sys.exit(77)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=False)


def runtime_packages():
    text = open(os.path.join(SRC, "deploy/Dockerfile")).read()
    stages = re.split(r"^FROM ", text, flags=re.M)
    runtime = stages[-1]
    m = re.search(r"apt-get install[^\n]*?--no-install-recommends(.*?)(&&|$)", runtime, re.S)
    if not m:
        print("FAIL: the runtime stage has no apt-get install")
        sys.exit(1)
    words = m.group(1).replace("\\\n", " ").split()
    return {w for w in words if not w.startswith("-")}


def package_of(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        # usrmerge: dpkg may know /usr/lib/... for a file ldd finds in /lib/...
        if p.startswith("/lib"):
            candidates.append("/usr" + p)
        elif p.startswith("/usr/lib"):
            candidates.append(p[4:])
    for p in candidates:
        r = run("dpkg-query", "-S", p)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def depends(pkg):
    r = run("dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg)
    if r.returncode != 0:
        return set()
    out = set()
    for alt in r.stdout.split(","):
        for choice in alt.split("|"):
            name = choice.strip().split(" ")[0].split(":")[0]
            if name:
                out.add(name)
    return out


def closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(depends(p) - seen)
    return seen


def in_base_image(pkg):
    r = run("dpkg-query", "-W", "-f=${Essential} ${Priority}", pkg)
    return r.returncode == 0 and ("yes" in r.stdout.split()[0:1] or "required" in r.stdout)


ldd = run("ldd", BINARY)
if ldd.returncode != 0:
    print("FAIL: ldd", BINARY, ldd.stderr.strip())
    sys.exit(1)
libs = {}
for line in ldd.stdout.splitlines():
    m = re.match(r"\s*(\S+) => (/\S+)", line)
    if m and not SANITIZER_RUNTIMES.search(m.group(1)):
        libs[m.group(1)] = m.group(2)

wanted = runtime_packages()
available = closure(wanted)
failures = []
providers = {}
for soname, path in sorted(libs.items()):
    pkg = package_of(path)
    if pkg is None:
        failures.append(f"{soname}: no Debian package owns {path}")
        continue
    providers.setdefault(pkg, []).append(soname)
    if pkg not in available and not in_base_image(pkg):
        failures.append(f"{soname} comes from {pkg}, which the runtime stage does not install")
for pkg in sorted(wanted - NOT_LIBRARIES):
    if pkg not in providers:
        failures.append(f"the runtime stage installs {pkg}, which provides no linked library")
for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
direct = sorted(p for p in providers if p in wanted)
print(f"Dockerfile: {len(libs)} libraries covered; direct packages: {' '.join(direct)}")
