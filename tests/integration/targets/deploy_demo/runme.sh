#!/usr/bin/env bash
# Issue 5 acceptance: the README's main command builds an example web app image offline, ships
# it to the default local store, deploys it to this machine with droot.core.deploy, runs it in
# its chroot, and prints the URL and the app's answer. The demo's own clean-up runs after.
set -eux -o pipefail

# ansible-test points ANSIBLE_COLLECTIONS_PATH at the staged source tree.
source_dir=${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/droot/core
# The demo uses the venv that runs this test.
DROOT_VENV=$(python -c 'import sys; print(sys.prefix)')
export DROOT_VENV
out=$(mktemp /tmp/droot-demo-output.XXXXXX)

cleanup() {
    "$source_dir/examples/demo.sh" clean || true
    rm -f "$out"
}
trap cleanup EXIT

# The README's example playbooks are valid.
(cd "$source_dir/examples" && ansible-playbook --syntax-check -i inventory.ini deploy.yml rollback.yml)

# Fresh: nothing of an earlier demo is left to make this pass.
"$source_dir/examples/demo.sh" clean
test ! -e /var/containers/droot-demo-web

# A wrong option stops the play before anything is done, with a message that names it.
if ansible-playbook -i "$source_dir/examples/demo/inventory.ini" "$source_dir/examples/demo/demo.yml" \
    -e droot_image=droot-demo-web:latest >"$out" 2>&1; then
    exit 1
fi
grep "droot.core.deploy: set exactly one of droot_image (an image on the build host) and droot_build" "$out"
test ! -e /var/containers/droot-demo-web

# Check mode on the fresh machine runs to the end (the host reads the directory store in place)
# and makes nothing: no image, no archive, no release, nothing running; the steps show as changes.
ansible-playbook -i "$source_dir/examples/demo/inventory.ini" "$source_dir/examples/demo/demo.yml" --check >"$out" 2>&1 ||
    { cat "$out"; exit 1; }
grep -E "^localhost +: ok=[0-9]+ +changed=[1-9][0-9]* +unreachable=0 +failed=0" "$out"
test ! -e /var/containers/droot-demo-web
test ! -e /var/lib/droot/store/droot-demo-web.tar.zst
if docker image inspect droot-demo-web:latest >/dev/null 2>&1; then exit 1; fi
if curl -fsS --max-time 2 http://127.0.0.1:8080/; then exit 1; fi

"$source_dir/examples/demo.sh" | tee "$out"

# The output names the URL and shows the app's answer, given from inside the jail: run as
# nobody, without capabilities, with the image's tree as its /.
grep -x "URL: http://127.0.0.1:8080/" "$out"
grep -x "Hello from droot.core: busybox httpd in a jail of its own, run by droot_run." "$out"
grep -x "user: nobody (uid 65534), effective capabilities: 0000000000000000" "$out"
grep -x "its / holds: bin dev etc linuxrc proc root sbin sys tmp usr var www" "$out"

# The app is what answers on the URL, and it runs from the release the role made: the pidfile
# names the jail's init, whose root (pivoted into, so known by identity) is that release.
curl -fsS http://127.0.0.1:8080/ | grep -q "Hello from droot.core"
release=$(readlink /var/containers/droot-demo-web/current)
pid=$(cat /run/droot/droot-demo-web.pid)
[ "$(cat "/proc/$pid/comm")" = droot-init ]
[ "$(stat -L -c %d:%i "/proc/$pid/root")" = "$(stat -c %d:%i "/var/containers/droot-demo-web/$release")" ]
test -f /var/lib/droot/store/droot-demo-web.tar.zst.json

# The clean-up leaves nothing running, mounted or on disk.
"$source_dir/examples/demo.sh" clean
if curl -fsS --max-time 2 http://127.0.0.1:8080/; then exit 1; fi
if grep " /var/containers/droot-demo-web" /proc/self/mountinfo; then exit 1; fi
test ! -e /var/containers/droot-demo-web
test ! -e /var/lib/droot/store/droot-demo-web.tar.zst
