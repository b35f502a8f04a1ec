#!/bin/sh
# Copy the working tree (tracked and untracked-but-not-ignored files) to
# DEST/ansible_collections/droot/core, where ansible-test needs the collection to be.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
dest="${1:?usage: stage.sh DEST}/ansible_collections/droot/core"
rm -rf "$dest"
mkdir -p "$dest"
cd "$src"
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --from0 --files-from=- ./ "$dest/"
echo "$dest"
