#!/usr/bin/env bash
# The README's demo (`make demo`, which runs `make setup` first): on this machine, as root,
# build an example web app image offline, ship it to droot.core.deploy's default store (the
# directory /var/lib/droot/store), deploy it to this machine with the role, run it in its chroot,
# and print its URL and its answer.
#
# usage: examples/demo.sh [clean]
#   clean stops the app, unmounts its root and removes what the demo made.
# Environment: DROOT_VENV (default /opt/droot-venv: the venv of `make setup`), DROOT_DEMO_PORT
# (default 8080).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${DROOT_VENV:-/opt/droot-venv}
port=${DROOT_DEMO_PORT:-8080}
url=http://127.0.0.1:$port/

die() { echo "demo: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run me as root: the app runs in a chroot with its own mounts"
[ -x "$venv/bin/ansible-playbook" ] || die "no Ansible in $venv: run 'make setup' (or set DROOT_VENV)"
docker info >/dev/null 2>&1 || die "Docker does not answer: run 'make setup'"

# Ansible finds the collection in this checkout through a symlink of the expected name.
collections=$(mktemp -d /tmp/droot-demo-collections.XXXXXX)
trap 'rm -rf "$collections"' EXIT
mkdir -p "$collections/ansible_collections/droot"
ln -s "$repo" "$collections/ansible_collections/droot/core"
export ANSIBLE_COLLECTIONS_PATH=$collections
cd "$repo/examples/demo"

if [ "${1:-}" = clean ]; then
    "$venv/bin/ansible-playbook" -i inventory.ini clean.yml
    exit
fi
[ $# -eq 0 ] || die "usage: $0 [clean]"

# No registry: the app's base image is Debian's static busybox, imported.
sh "$repo/tests/integration/targets/setup_docker/files/import_busybox_image.sh" droot-demo-busybox:latest
"$venv/bin/ansible-playbook" -i inventory.ini demo.yml -e demo_port="$port"

answer=$("$venv/bin/python" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())' "$url")
echo
echo "The demo app runs in /var/containers/droot-demo-web/current. Ask it yourself: curl $url"
echo "URL: $url"
echo "Answer:"
echo "$answer"
