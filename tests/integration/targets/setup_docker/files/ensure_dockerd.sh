#!/bin/sh
# Make sure a Docker daemon answers. If none does, start Debian's dockerd in the background,
# without the default bridge network and without touching iptables: test containers use
# --network none or --network host only. A daemon that already answers is left as it is.
# Used by the setup_docker target and by tests/run.sh.
set -eu
log=${DROOT_DOCKERD_LOG:-/var/log/droot-test-dockerd.log}

if docker info >/dev/null 2>&1; then
    echo "dockerd: answering"
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    echo "dockerd: DOCKER_HOST=$DOCKER_HOST does not answer; unset it to use a local dockerd" >&2
    exit 1
fi
command -v dockerd >/dev/null || { echo "dockerd: not installed; apt-get install docker.io" >&2; exit 1; }
# A daemon that is still starting gets time to answer instead of a rival.
if ! pidof dockerd >/dev/null; then
    setsid -f dockerd --bridge=none --iptables=false >>"$log" 2>&1 </dev/null
fi
tries=60
until docker info >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ "$tries" -eq 0 ]; then
        echo "dockerd: no answer after 60 s; its log $log ends with:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    sleep 1
done
echo "dockerd: started (log: $log)"
