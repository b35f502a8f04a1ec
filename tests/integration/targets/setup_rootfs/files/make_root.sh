#!/bin/sh
# Build a small root filesystem offline: busybox-static, the probe, and the root's own users
# (uid 4321 "app" exists in no host passwd), for the droot_run and droot_umount tests.
set -eu
dest=$1
probe_src=$(dirname "$0")/probe.c
# The root holds a setuid-root probe: no host user may reach it.
mkdir -p "$(dirname "$dest")"
chmod 700 "$(dirname "$dest")"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/bin" "$dest.tmp/etc" "$dest.tmp/work" "$dest.tmp/home/app" "$dest.tmp/.droot"
cp /bin/busybox "$dest.tmp/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dest.tmp/bin/$applet"
done
gcc -static -O2 -o "$dest.tmp/bin/probe" "$probe_src"
cp "$dest.tmp/bin/probe" "$dest.tmp/bin/suid-probe"
chmod 4755 "$dest.tmp/bin/suid-probe"
cat > "$dest.tmp/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:4321:4321:app:/home/app:/bin/sh
PASSWD
cat > "$dest.tmp/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
app:x:4321:
extra:x:5555:app
GROUP
chown 4321:4321 "$dest.tmp/home/app"
chmod 1777 "$dest.tmp/work"
printf 'FROM_DROOTENV=yes\nGREETING=from-drootenv\n' > "$dest.tmp/.drootenv"
cat > "$dest.tmp/.droot/config.json" <<'JSON'
{"format": 1, "image_id": "sha256:0000", "env": ["GREETING=from-config", "PATH=/bin"],
 "working_dir": "/work", "user": "", "entrypoint": ["/bin/echo"], "cmd": ["from", "entrypoint"]}
JSON
rm -rf "$dest"
mv "$dest.tmp" "$dest"
