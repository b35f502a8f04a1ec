#!/bin/sh
# Copy the working tree (tracked and untracked-but-not-ignored files) to
# DEST/ansible_collections/droot/core, where ansible-test needs the collection to be.
# ansible-test's tests/output (its venvs and results) is kept from the previous copy, so that
# staging again does not cost a new venv.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
dest="${1:?usage: stage.sh DEST}/ansible_collections/droot/core"
kept="$dest.output"

# A test that failed may have left mounts (bind mounts of host paths included) in the old
# copy: deleting through them would delete on the host.
mounted=$(awk -v a="$dest" -v b="$kept" '{ gsub(/\\040/, " ", $5) }
    $5 == a || $5 == b || index($5, a "/") == 1 || index($5, b "/") == 1 { print $5 }' /proc/self/mountinfo)
if [ -n "$mounted" ]; then
    echo "stage.sh: still mounted in the old copy $dest, unmount first (umount -R):" >&2
    echo "$mounted" >&2
    exit 1
fi

rm -rf "$kept"
if [ -d "$dest/tests/output" ]; then mv "$dest/tests/output" "$kept"; fi
rm -rf "$dest"
mkdir -p "$dest/tests"
if [ -d "$kept" ]; then mv "$kept" "$dest/tests/output"; fi
cd "$src"
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --from0 --ignore-missing-args --files-from=- ./ "$dest/"
echo "$dest"
