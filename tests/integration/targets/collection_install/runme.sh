#!/usr/bin/env bash
# Issue 2 acceptance: `ansible-galaxy collection build`, then `ansible-galaxy collection install`
# of that tarball into a fresh path, gives a collection whose droot_run and droot_umount
# ansible-doc renders and that a playbook uses as droot.core.droot_run.
set -eux

# ansible-test points ANSIBLE_COLLECTIONS_PATH at the staged source tree.
source_dir=${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/droot/core
work=$(mktemp -d /tmp/droot-collection-install.XXXXXX)

mounts_under_work() {
    awk -v under="$work/" 'index($5, under) == 1 { print $5 }' /proc/self/mountinfo
}

cleanup() {
    # A failed droot_run may leave its mounts in the test root: unmount them, deepest first.
    # Deleting through a bind mount would delete on the host, so nothing is deleted while one
    # is left.
    mounts_under_work | sort -r | while read -r mount_point; do umount "$mount_point" || true; done
    if [ -n "$(mounts_under_work)" ]; then
        echo "collection_install: still mounted under $work, left in place:" >&2
        mounts_under_work >&2
        exit 1
    fi
    rm -rf "$work"
}
trap cleanup EXIT

ansible-galaxy collection build "$source_dir" --output-path "$work"

# From here on, only the fresh path is visible: the install cannot find droot.core already
# there, and the commands after it can only use what it installed.
export ANSIBLE_COLLECTIONS_PATH=$work/collections
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
unset ANSIBLE_PLAYBOOK_DIR
installed=$work/collections/ansible_collections/droot/core

ansible-galaxy collection install --offline -p "$work/collections" "$work"/droot-core-*.tar.gz
test -f "$installed/MANIFEST.json"

for module in droot_run droot_umount; do
    ansible-doc "droot.core.$module" >"$work/$module.txt"
    grep -F "$installed/plugins/modules/$module.py" "$work/$module.txt"
done

root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/echo"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

cp use_installed.yml "$work/"
cd "$work"
ansible-playbook -i "$INVENTORY_PATH" use_installed.yml -e test_root="$root" "$@"
