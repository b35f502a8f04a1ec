#!/bin/sh
# Build IMAGE, a minimal Debian 12 host with sshd and the Python libraries droot.core needs on
# its targets, unless an image of that name made by this very script exists. Offline but for
# the machine's own apt sources (mmdebstrap). Prints "built" when it built the image.
set -eu
image=${1:?usage: build_host_image.sh IMAGE}
packages=openssh-server,python3,python3-prctl,python3-seccomp,python3-boto3,python3-zstandard
# The image carries the hash of the script that made it: a change here rebuilds it.
label=org.droot-core.test-host-recipe
recipe=$(sha256sum "$0" | cut -c1-16)

if [ "$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null)" = "$recipe" ]; then
    echo "present: $image"
    exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing; apt-get install mmdebstrap" >&2; exit 1; }

old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$work/rootfs.tar"
docker import \
    --change "LABEL $label=$recipe" \
    "$work/rootfs.tar" "$image" >/dev/null
# The image of an older recipe, now untagged, is of no use.
[ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
echo "built: $image"
