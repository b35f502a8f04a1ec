#!/bin/sh
# Build, offline but for the machine's apt sources, a Debian 12 root with nginx and PostgreSQL
# from Debian's packages, as the directory CACHE (kept: a change of this script rebuilds it).
# Services are never started while the packages install (policy-rc.d).
set -eu
cache=${1:?usage: build_apps_root.sh CACHE_DIR}
recipe=$(sha256sum "$0" | cut -c1-16)
if [ -d "$cache" ] && [ "$(cat "$cache.recipe" 2>/dev/null)" = "$recipe" ]; then
    echo "present: $cache"
    exit 0
fi
# Debian's setuid programs are in it: no host user may reach them.
mkdir -p "$(dirname "$cache")"
chmod 700 "$(dirname "$cache")"
rm -rf "$cache.tmp" "$cache" "$cache.recipe"
# The hooks are mmdebstrap's to expand: $1 is the root it builds.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --format=directory --include=nginx-light,postgresql-15 \
    --essential-hook='printf "#!/bin/sh\nexit 101\n" > "$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"' \
    --essential-hook='mkdir -p "$1/etc/postgresql-common"; echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"' \
    bookworm "$cache.tmp"
mv "$cache.tmp" "$cache"
echo "$recipe" > "$cache.recipe"
echo "built: $cache"
