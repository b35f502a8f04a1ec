#!/bin/sh
# Import IMAGE, a minimal root filesystem made from Debian's busybox-static, unless it exists
# and was made by this very script. Offline: nothing is pulled. Prints "imported" when it
# imported the image.
set -eu
image=${1:?usage: import_busybox_image.sh IMAGE}
busybox=/bin/busybox
# The image carries the hash of the script that made it: an image of the same name made
# otherwise, or by an older version of this script, is replaced.
label=org.droot-core.test-base-recipe
recipe=$(sha256sum "$0" | cut -c1-16)

if [ "$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null)" = "$recipe" ]; then
    echo "present: $image"
    exit 0
fi
# The image has no libc: only a static busybox runs in it.
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "$busybox is missing or not static; apt-get install busybox-static" >&2
    exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/root" \
    "$root/tmp" "$root/var/tmp" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
# Relative links, so that the tree is also right when looked at from outside a chroot.
"$busybox" --list-full | while read -r applet; do
    up=$(echo "$applet" | sed 's|[^/]*/|../|g; s|[^/]*$||')
    [ -e "$root/$applet" ] || ln -s "${up}bin/busybox" "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
    docker import \
        --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/sh"]' \
        --change "LABEL $label=$recipe" \
        - "$image" >/dev/null
echo "imported: $image"
