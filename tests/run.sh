#!/usr/bin/env bash
# The project's one test command (`make test`, README, .ci/run). On a Debian 12 machine, as root,
# it installs what the tests need (quick when already done), stages the collection where
# ansible-test needs it, runs the test stages, and ends with the line "N passed, N failed".
#
# usage: tests/run.sh [all|setup|units|sanity|compat|lint|integration|returns] [ansible-test arguments...]
#   all (default) runs every stage; the arguments are only passed to a single chosen stage,
#   for example `tests/run.sh integration droot_run` or `tests/run.sh sanity --test pep8`.
#   returns checks the module results that the last integration run recorded (see returns()).
#
# Environment: DROOT_VENV (default /opt/droot-venv), DROOT_PYTHON (the Python that creates the
# venv, default /usr/bin/python3), DROOT_BUILD_DIR (where the collection is staged, outside any
# git work tree because ansible-test lists files with git; default /tmp/droot-build-<repo path>),
# DROOT_DOCKERD_LOG (default /var/log/droot-test-dockerd.log).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${DROOT_VENV:-/opt/droot-venv}
base_python=${DROOT_PYTHON:-/usr/bin/python3}
build=${DROOT_BUILD_DIR:-/tmp/droot-build$(printf %s "$repo" | tr / -)}
collection=$build/ansible_collections/droot/core
module_results=$build/module-results
stage=${1:-all}
shift || true

case $stage in
    all | setup | units | sanity | compat | lint | integration | returns) ;;
    *) echo "usage: $0 [all|setup|units|sanity|compat|lint|integration|returns] [ansible-test arguments...]" >&2; exit 2 ;;
esac
if [ "$stage" = all ] && [ $# -gt 0 ]; then
    echo "$0: arguments apply to a single stage, not to 'all'" >&2
    exit 2
fi

banner() { printf '\n===== %s =====\n' "$*"; }

# --- set-up --------------------------------------------------------------------------------

# Every bindep.txt line that applies to Debian: marked platform:dpkg, or with no platform.
apt_packages() {
    sed 's/#.*//' "$repo/bindep.txt" | awk 'NF && (/platform:dpkg/ || !/platform:/) { print $1 }'
}

setup_apt() {
    local missing=() pkg
    for pkg in $(apt_packages); do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "apt: all bindep.txt packages are installed"
        return
    fi
    echo "apt: installing ${missing[*]}"
    # Keep package scripts from starting services (docker.io would start dockerd with its
    # default bridge network); tests/run.sh starts what it needs itself. The set-up runs in a
    # subshell (run_stage), whose exit removes the policy file made here.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The venv requirement file and the files it includes with -r, for the change stamp.
requirement_files() {
    local top=$repo/tests/utils/venv-requirements.txt
    echo "$top"
    sed -n 's/^-r[[:space:]]*//p' "$top" | while read -r included; do
        (cd "$(dirname "$top")" && realpath "$included")
    done
}

setup_venv() {
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        echo "venv: creating $venv with $base_python"
        "$base_python" -m venv "$venv"
    fi
    local stamp=$venv/.droot-requirements.sha256 want
    want=$(requirement_files | xargs -d '\n' cat | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        echo "venv: $venv is up to date with the requirement files"
        return
    fi
    echo "venv: installing the requirement files into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/tests/utils/venv-requirements.txt"
    echo "$want" >"$stamp"
}

# libseccomp's own Python binding has no PyPI release: the venv gets Debian's python3-seccomp
# (bindep.txt) the way a host's /usr/bin/python3 has it, through a .pth file that exposes that
# one module and nothing else of the system's packages.
setup_system_modules() {
    local site dir=$venv/droot-system-modules module
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$dir"
    for module in /usr/lib/python3/dist-packages/seccomp.cpython-*.so; do
        [ -e "$module" ] && ln -sfn "$module" "$dir/"
    done
    echo "$dir" >"$site/droot-system-modules.pth"
    "$venv/bin/python" -c 'import seccomp' || { echo "venv: cannot import seccomp (python3-seccomp)" >&2; return 1; }
    echo "venv: seccomp from python3-seccomp"
}

# ansible-test sanity --venv bootstraps pip in each venv it creates with a get-pip.py that it
# downloads from a host this network cannot reach, unless the file is already in its cache.
setup_get_pip() {
    local path
    path=$("$venv/bin/python" -c '
import os, types
from ansible_test._internal.python_requirements import get_venv_packages
version = get_venv_packages(types.SimpleNamespace(version="3"))["pip"]
print(os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_")))')
    if cmp -s "$repo/tests/utils/get_pip.py" "$path"; then
        echo "get-pip: $path is in place"
        return
    fi
    mkdir -p "$(dirname "$path")"
    cp "$repo/tests/utils/get_pip.py" "$path"
    echo "get-pip: wrote $path (uses ensurepip)"
}

setup() {
    setup_apt
    setup_venv
    setup_system_modules
    setup_get_pip
    sh "$repo/tests/integration/targets/setup_docker/files/ensure_dockerd.sh"
    "$repo/tests/utils/stage.sh" "$build" >/dev/null
    echo "staged: $collection"
}

# --- stages --------------------------------------------------------------------------------

results=()
passed=0
failed=0

record() { # PASS|FAIL NAME SECONDS
    results+=("$(printf '%s  %-45s %6s' "$1" "$2" "${3}s")")
    if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# Run a stage with errexit inside a subshell, so that a failure ends the stage, not the script.
run_stage() { # NAME COMMAND...
    local name=$1 start=$SECONDS rc
    shift
    banner "$name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then record PASS "$name" $((SECONDS - start)); else record FAIL "$name" $((SECONDS - start)); fi
    return 0
}

ansible_test() {
    (cd "$collection" && "$venv/bin/ansible-test" "$@")
}

units() { ansible_test units --local --python "$pyver" "$@"; }

sanity() { ansible_test sanity --venv --python "$pyver" "$@"; }

# Module code runs on targets with the oldest Python of tests/config.yml's python_requires,
# which this machine does not have: vermin checks that no newer syntax or library is used.
compat() {
    local oldest
    oldest=$("$venv/bin/python" -c '
import re, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))["modules"]["python_requires"]
print(re.fullmatch(r">=\s*(3\.[0-9]+)", spec).group(1))' "$repo/tests/config.yml")
    echo "module code must run on Python $oldest"
    (cd "$collection" && "$venv/bin/vermin" --no-tips --violations --target="$oldest-" "${@:-plugins}")
}

# The roles' variables carry the collection's prefix droot_ (both roles share them), not each
# role's name, hence the one skipped rule.
lint() {
    (cd "$collection" && PATH="$venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$build" ansible-lint --offline \
        --profile production --skip-list 'var-naming[no-role-prefix]' "${@:-roles/}")
}

# The Ansible configuration of the integration targets (ansible-test reads
# tests/integration/integration.cfg, copied away, so with absolute paths; the runme.sh targets
# inherit it): the callback tests/utils/callback_plugins/droot_results.py, which runs without
# being enabled (ansible-test's ANSIBLE_CALLBACKS_ENABLED replaces callbacks_enabled), records
# every droot.core module result in $module_results, which each integration run empties first;
# bin_ansible_callbacks makes ad-hoc `ansible` commands record theirs too.
write_integration_cfg() {
    rm -rf "$module_results"
    mkdir -p "$module_results"
    cat >"$collection/tests/integration/integration.cfg" <<EOF
# Written by tests/run.sh for this run of the integration targets.
[defaults]
callback_plugins = $collection/tests/utils/callback_plugins
bin_ansible_callbacks = true

[callback_droot_results]
results_dir = $module_results
EOF
}

# Each target counts as a stage: ansible-test records the targets that passed, with their run
# time, in tests/output/data; the others it was asked to run failed.
integration() {
    local args=(integration --local --python "$pyver" --allow-destructive --continue-on-error "$@")
    local selected start=$SECONDS failed_before=$failed rc status target seconds
    banner "integration"
    selected=$(ansible_test "${args[@]}" --list-targets) || selected=
    if [ -z "$selected" ]; then
        echo "integration: no target selected by: ${*:-all targets}"
        record FAIL integration $((SECONDS - start))
        return 0
    fi
    echo "targets: $(echo "$selected" | tr '\n' ' ')"
    rm -rf "$collection/tests/output/data"
    write_integration_cfg
    set +e
    ansible_test "${args[@]}"
    rc=$?
    set -e
    while read -r status target seconds; do
        record "$status" "integration/$target" "$seconds"
    done < <("$venv/bin/python" - "$collection/tests/output/data" "$selected" <<'EOF'
import glob, json, os, sys
passed = {}
for path in glob.glob(os.path.join(sys.argv[1], "integration-*.json")):
    with open(path) as results:
        for name, target in json.load(results)["targets"].items():
            passed[name] = target["run_time_seconds"]
for name in sys.argv[2].split():
    print("PASS %s %s" % (name, passed[name]) if name in passed else "FAIL %s ?" % name)
EOF
    )
    if [ $rc -ne 0 ] && [ "$failed" -eq "$failed_before" ]; then
        record FAIL "integration (ansible-test exit $rc)" $((SECONDS - start))
    fi
}

# Every key of each droot.core module result that the last integration run recorded must be in
# the module's RETURN, and every module must have been seen (only a run of all targets sees all).
returns() {
    "$venv/bin/python" "$collection/tests/utils/check_returns.py" "$module_results" "$collection/plugins/modules"
}

summary() {
    banner "summary"
    local line
    for line in "${results[@]}"; do echo "$line"; done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

run_stage setup setup
if [ "$failed" -ne 0 ] || [ "$stage" = setup ]; then
    summary
    exit
fi
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

case $stage in
    all)
        run_stage units units
        run_stage sanity sanity
        run_stage compat compat
        run_stage lint lint
        integration
        run_stage returns returns
        ;;
    integration) integration "$@" ;;
    *) run_stage "$stage" "$stage" "$@" ;;
esac
summary
