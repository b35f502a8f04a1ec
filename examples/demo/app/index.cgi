#!/bin/sh
# busybox httpd runs this for "/" (there is no index.html).
capabilities=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
echo "Content-Type: text/plain"
echo
echo "Hello from droot.core: busybox httpd in a jail of its own, run by droot_run."
echo "user: $(id -un) (uid $(id -u)), effective capabilities: $capabilities"
echo "its / holds:" $(ls /)
