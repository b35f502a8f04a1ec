#!/usr/bin/env bash
# Issue 5 acceptance: droot.core.deploy and droot.core.rollback on three hosts, each a container
# with its own file system and sshd on its own 127.0.0.1 port (setup_hosts), reached over SSH;
# S3 is moto_server on 127.0.0.1 behind a proxy with one port per host (files/s3proxy.py), which
# logs who downloads what and can hold a host in the middle of a download.
# Everything is checked as a user sees it: what each host's port serves, the releases on each
# host's disk, the PLAY RECAP and the failure messages. Issue 11: check mode runs to the end,
# changes nothing on the hosts or the build host, and reports every step that the same play then
# changes for real (callback_plugins/droot_steps.py records the step of each task result).
set -eux -o pipefail

export ANSIBLE_ROLES_PATH=..
export ANSIBLE_HOST_KEY_CHECKING=false
export ANSIBLE_PIPELINING=true
export ANSIBLE_FORKS=3
export ANSIBLE_NOCOLOR=true
export ANSIBLE_FORCE_COLOR=false
# This target's callbacks, before those of the run's configuration (tests/run.sh's records every
# droot.core module result), which the variable would otherwise replace.
ANSIBLE_CALLBACK_PLUGINS=$PWD/callback_plugins:$(python -c 'from ansible import constants as C; print(":".join(C.DEFAULT_CALLBACK_PLUGIN_PATH))')
export ANSIBLE_CALLBACK_PLUGINS
export ANSIBLE_CALLBACKS_ENABLED=droot_steps

# Names and ports of this run (another run on the same machine needs its own, through
# DROOT_HOSTS_NAME and DROOT_HOSTS_PORT_OFFSET): host N is the container $name-N, the app's images
# are $name-app:VERSION, the bucket is $name.
name=${DROOT_HOSTS_NAME:-droot-hosts}
offset=${DROOT_HOSTS_PORT_OFFSET:-0}
work=$(mktemp -d "/tmp/$name.XXXXXX")
moto_port=$((5071 + offset))     # this target's own moto_server
proxy_base=$((15400 + offset))   # host N: S3 proxy proxy_base+N, app app_base+N, sshd ssh_base+N
app_base=$((18400 + offset))
ssh_base=$((22400 + offset))
base=/var/containers/webapp
proxy_pid=

cleanup() {
    set +e
    [ -n "$proxy_pid" ] && kill "$proxy_pid"
    ansible-playbook teardown.yml -e setup_hosts_prefix="$name-" >/dev/null
    docker rmi "$name-app:v1" "$name-app:v2" "$name-app:v3" "$name-app:v4" >/dev/null
    AWS_ACCESS_KEY_ID=droothosts AWS_SECRET_ACCESS_KEY=droothosts-secret AWS_DEFAULT_REGION=us-east-1 \
        aws --endpoint-url "http://127.0.0.1:$moto_port" s3 rb --force "s3://$name" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ansible-playbook setup.yml -e setup_hosts_dir="$work" -e droot_test_s3_port=$moto_port \
    -e setup_hosts_prefix="$name-" -e "{\"setup_hosts_ssh_port\": $ssh_base}" -e hosts_name="$name"
echo "set-up: $SECONDS s"

# The hosts' own variables: the app's port, the S3 proxy port, and host 2's broken version.
for n in 1 2 3; do
    sed -i "s/^$name-$n .*/& app_port=$((app_base + n)) s3_proxy_port=$((proxy_base + n))/" "$work/inventory.ini"
done
sed -i "s/^$name-2 .*/& app_broken=v3/" "$work/inventory.ini"
echo "hosts_name=$name" >>"$work/inventory.ini"
cat "$work/inventory.ini"

mkdir "$work/control"
python3 files/s3proxy.py $moto_port "$work/s3.log" "$work/control" \
    $((proxy_base + 1)) $((proxy_base + 2)) $((proxy_base + 3)) &
proxy_pid=$!
for _ in $(seq 50); do [ -e "$work/control/ready" ] && break; sleep 0.1; done
touch "$work/s3.log"

# --- helpers ---------------------------------------------------------------------------------

# play LOGNAME ARGS...: run a playbook, keep its output in $work/LOGNAME.log, never stop the script.
play() {
    local name=$1
    shift
    local start=$SECONDS
    run_start_line=$(wc -l <"$work/s3.log")
    set +e
    DROOT_STEPS_LOG="$work/$name.steps" ansible-playbook -i "$work/inventory.ini" "$@" 2>&1 | tee "$work/$name.log"
    play_rc=${PIPESTATUS[0]}
    set -e
    echo "play $name: exit $play_rc after $((SECONDS - start)) s"
}
# DROOT_TEST_KEEP_GOING=1 reports every failed check instead of stopping at the first.
fail() {
    echo "FAILED: $*" >&2
    failures=$((${failures:-0} + 1))
    [ -n "${DROOT_TEST_KEEP_GOING:-}" ] || exit 1
}
release_of() { docker image inspect --format '{{.Id}}' "$name-app:$1" | sed 's/^sha256://' | cut -c1-12; }
serves() { curl -fsS --max-time 5 "http://127.0.0.1:$((app_base + $1))/" 2>/dev/null || true; }
expect_serves() { # HOST VERSION
    [ "$(serves "$1")" = "webapp $2" ] || fail "host $1 serves '$(serves "$1")', not 'webapp $2'"
}
on_host() { local n=$1; shift; docker exec "$name-$n" "$@"; }
current_of() { on_host "$1" readlink "$base/current"; }
expect_current() { # HOST VERSION
    [ "$(current_of "$1")" = "releases/$(release_of "$2")" ] || fail "host $1: current is $(current_of "$1"), not $2"
}
has_release() { on_host "$1" test -d "$base/releases/$(release_of "$2")"; }
recap() { # LOG HOST FIELD: the host's number in the PLAY RECAP, "absent" when not listed
    local value
    value=$(sed -n "/^PLAY RECAP/,\$ s/^$name-$2 *: .*\\b$3=\\([0-9]*\\).*/\\1/p" "$work/$1.log")
    echo "${value:-absent}"
}
# The output of a task of the role in a play's log.
task_output() { awk -v t="TASK [droot.core.deploy : $2]" 'index($0, t) == 1 { on = 1; next } /^TASK \[/ { on = 0 } on' "$work/$1.log"; }
# Archive downloads (GET of the archive, not of its manifest) by host N since the last play.
downloads() { tail -n +"$((run_start_line + 1))" "$work/s3.log" | awk -v port=$((proxy_base + $1)) '$1 == port && $2 == "GET" && $3 ~ /\.tar\.zst$/' | wc -l; }
s3() { AWS_ACCESS_KEY_ID=droothosts AWS_SECRET_ACCESS_KEY=droothosts-secret AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "http://127.0.0.1:$moto_port" "$@"; }

# What a check-mode run must leave as it was: on each host the app's trees and current, pid
# files, logs and the hook's record, its processes (by pid), mounts and installed packages, and
# what it serves; on the build host the app's images, the S3 store and the directory store.
state() {
    local n
    for n in 1 2 3; do
        echo "== host $n: $(serves $n)"
        # shellcheck disable=SC2016 # expanded by the host's shell
        on_host $n sh -c '
            find /var/containers /var/cache/droot /run/droot /var/log/droot /var/log/webapp-last-switch \
                -printf "%p %y %m %U:%G %s %T@ %l\n" 2>/dev/null | sort
            ps -eo pid=,comm=,args= | awk "\$2 !~ /^(sshd.*|ps|sh|sort|awk|find|md5sum|dpkg-query)\$/"
            awk "{ print \$5 }" /proc/self/mountinfo | sort
            dpkg-query -W | md5sum'
    done
    echo "== build host"
    docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' | grep "^$name-app:" | sort || true
    s3 s3api list-objects-v2 --bucket "$name" --query 'Contents[].[Key, ETag, Size, LastModified]' --output text
    find "$work/store" -printf "%p %y %m %s %T@\n" 2>/dev/null | sort || true
}
# The steps of the role that a play changed on host N, sorted, on one line.
steps_changed() { python3 files/steps.py changed "$work/$1.steps" "$name-$2"; }
# check_then_run LOGNAME ARGS...: the play in check mode (log LOGNAME-check), which must run to
# the end and leave everything as it was, then for real (log LOGNAME; the caller checks its exit):
# every step that the real run changed on a host was reported as changed there in check mode.
check_then_run() {
    local log=$1
    shift
    state >"$work/$log-check.before"
    play "$log-check" "$@" --check
    [ "$play_rc" -eq 0 ] || fail "the check-mode run $log-check failed"
    state >"$work/$log-check.after"
    diff "$work/$log-check.before" "$work/$log-check.after" | head -n 40 || fail "the check-mode run $log-check changed the above"
    play "$log" "$@"
    python3 files/steps.py covers "$work/$log-check.steps" "$work/$log.steps" ||
        fail "the check-mode run $log-check did not report every step that $log changed"
}

# --- a misspelt variable stops either role before it does anything ----------------------------

state >"$work/misspelt.before"
play misspelt deploy.yml -e app_version=v1 -e droot_healthurl=http://127.0.0.1:1/
[ "$play_rc" -ne 0 ] || fail "a deploy with the unknown variable droot_healthurl succeeded"
play misspelt-rollback rollback.yml -e droot_rollback_releases=v1
[ "$play_rc" -ne 0 ] || fail "a rollback with the unknown variable droot_rollback_releases succeeded"
for n in 1 2 3; do
    grep -E "^fatal: \[$name-$n\]: FAILED! => .*unknown variable droot_healthurl \(did you mean droot_health_url\?\)" "$work/misspelt.log" ||
        fail "host $n: the deploy did not fail naming droot_healthurl and droot_health_url"
done
# serial: 1 and max_fail_percentage: 0, so the first host's failure ends the rollback.
grep -E "^fatal: \[$name-1\]: FAILED! => .*unknown variable droot_rollback_releases \(did you mean droot_rollback_release\?\)" "$work/misspelt-rollback.log" ||
    fail "the rollback did not fail naming droot_rollback_releases and droot_rollback_release"
play missing-hook deploy.yml -e app_version=v1 -e droot_after_switch_tasks_file=/no/such/hook.yml
[ "$play_rc" -ne 0 ] || fail "a deploy with a hook file that is not there succeeded"
grep -E "^fatal: \[$name-1\]: FAILED! => .*the hook file /no/such/hook.yml does not exist" "$work/missing-hook.log" ||
    fail "the deploy did not fail naming the missing hook file"
state >"$work/misspelt.after"
diff "$work/misspelt.before" "$work/misspelt.after" | head -n 40 || fail "the deploy with a misspelt variable changed the above"

# --- rolling deploy of v1, then v2, each first in check mode -----------------------------------

check_then_run v1 deploy.yml -e app_version=v1 -e serial=1 -e max_fail=0
[ "$play_rc" -eq 0 ] || fail "deploy of v1 failed"
for n in 1 2 3; do expect_serves $n v1; expect_current $n v1; done

check_then_run v2 deploy.yml -e app_version=v2 -e serial=1 -e max_fail=0
[ "$play_rc" -eq 0 ] || fail "deploy of v2 failed"
# Check mode told that each host would stop the old release and start the new one.
for n in 1 2 3; do
    for step in fetch stop switch start; do
        steps_changed v2-check $n | grep -qw $step || fail "host $n: check mode did not report step $step of a new version"
    done
done
# The release id is the image id: every host and every batch agree without passing anything.
for n in 1 2 3; do
    expect_serves $n v2
    expect_current $n v2
    has_release $n v1 || fail "host $n lost v1, the previous release"
    [ "$(downloads $n)" -eq 1 ] || fail "host $n downloaded the archive $(downloads $n) times"
done
grep -q "TASK \[droot.core.deploy : Stop the jail of the old release\]" "$work/v2.log"
# The after-switch hook ran with the facts of the switch.
for n in 1 2 3; do
    [ "$(on_host $n cat /var/log/webapp-last-switch)" = "$(release_of v1) -> $(release_of v2)" ] ||
        fail "host $n: the after-switch hook saw '$(on_host $n cat /var/log/webapp-last-switch)'"
done

# --- the same version again: nothing changes, nothing is transferred --------------------------

v2_dir_before=$(for n in 1 2 3; do on_host $n stat -c '%i %Y' "$base/releases/$(release_of v2)"; done)
play v2-again deploy.yml -e app_version=v2 -e serial=1 -e max_fail=0
[ "$play_rc" -eq 0 ] || fail "second deploy of v2 failed"
for n in 1 2 3; do
    [ "$(recap v2-again $n changed)" = 0 ] || fail "host $n: changed=$(recap v2-again $n changed) on the second run"
    [ "$(recap v2-again $n ok)" != absent ] || fail "host $n is missing from the recap"
    [ "$(downloads $n)" -eq 0 ] || fail "host $n downloaded the archive again"
    expect_serves $n v2
done
v2_dir_after=$(for n in 1 2 3; do on_host $n stat -c '%i %Y' "$base/releases/$(release_of v2)"; done)
[ "$v2_dir_before" = "$v2_dir_after" ] || fail "a release directory was replaced by the second run"

# A host where the release already ran and was current is not health-checked unless asked to:
# with a check that no release passes, the same deploy succeeds; with droot_health_check_unchanged
# it fails on the health step, and leaves the running release as it was.
play v2-unchecked deploy.yml -e app_version=v2 -e serial=1 -e max_fail=0 -e droot_health_content=no-such-answer
[ "$play_rc" -eq 0 ] || fail "a no-op deploy checked the health of the release that ran already"
if grep -q "TASK \[droot.core.deploy : Wait for an answer from" "$work/v2-unchecked.log"; then fail "a no-op deploy ran the health check"; fi
play v2-checked deploy.yml -e app_version=v2 -e droot_health_content=no-such-answer -e droot_health_check_unchanged=true \
    -e droot_health_retries=1 --limit "$name-1"
[ "$play_rc" -ne 0 ] || fail "droot_health_check_unchanged did not check the health of the release that ran already"
grep -E "^fatal: \[$name-1\]: FAILED! => .*failed on $name-1 at step health .*no-such-answer.*the running release was left as it was" "$work/v2-checked.log" ||
    fail "the failed check of an unchanged host does not say that the running release was left as it was"
expect_serves 1 v2
expect_current 1 v2

# --- the rollback role: every host back on the previous release, serving it -------------------

check_then_run rollback rollback.yml
[ "$play_rc" -eq 0 ] || fail "rollback failed"
for n in 1 2 3; do
    expect_serves $n v1
    expect_current $n v1
    has_release $n v2 || fail "host $n: the rollback deleted v2"
    [ "$(on_host $n cat /var/log/webapp-last-switch)" = "$(release_of v2) -> $(release_of v1)" ] ||
        fail "host $n: the rollback's after-switch hook saw '$(on_host $n cat /var/log/webapp-last-switch)'"
    [ "$(recap rollback $n changed)" -gt 0 ] || fail "host $n: the rollback changed nothing"
done

# Deploying v2 again switches to the release on disk: no download.
play v2-redeploy deploy.yml -e app_version=v2 -e serial=1 -e max_fail=0
[ "$play_rc" -eq 0 ] || fail "redeploy of v2 failed"
for n in 1 2 3; do
    expect_serves $n v2
    [ "$(downloads $n)" -eq 0 ] || fail "host $n downloaded v2 although it is on disk"
done

# --- v3 fails its health check on host 2: host 2 goes back, the play stops --------------------

play v3 deploy.yml -e app_version=v3 -e serial=1 -e max_fail=0
[ "$play_rc" -ne 0 ] || fail "the play of v3 succeeded although host 2 is unhealthy"
expect_serves 1 v3
expect_current 1 v3
expect_serves 2 v2
expect_current 2 v2
has_release 2 v3 || fail "host 2 deleted the failed release (it stays for inspection)"
expect_serves 3 v2
expect_current 3 v2
! has_release 3 v3 || fail "host 3 was touched"
[ "$(recap v3 3 ok)" = absent ] || fail "host 3 ran tasks"
[ "$(recap v3 2 failed)" = 1 ] || fail "host 2 did not fail"
[ "$(recap v3 1 failed)" = 0 ] || fail "host 1 failed"
grep -E "^fatal: \[$name-2\]: FAILED! => .*deploy of webapp release $(release_of v3) failed on $name-2 at step health .*back on release $(release_of v2), which passed its health check" "$work/v3.log" ||
    fail "no failure of host 2 naming the health step and the release it went back to"
grep -q "NO MORE HOSTS LEFT" "$work/v3.log"
# The restore marked v3 as rolled back on host 2: going back from v2 now means v1, never v3.
ansible -i "$work/inventory.ini" "$name-2" -m droot.core.droot_info -a "dest=$base disk_usage=false" -o \
    >"$work/v3-previous.log" || fail "droot_info could not tell host 2's previous release"
grep -Eq "\"previous\": ?\"$(release_of v1)\"" "$work/v3-previous.log" ||
    fail "host 2 would roll back to $(grep -Eo '"previous": ?"[^"]*"' "$work/v3-previous.log"), not to v1"

# --- host 2 killed in the middle of its download: it fails alone, a rerun finishes -------------

touch "$work/control/stall-$((proxy_base + 2))"
play v4 deploy.yml -e app_version=v4 &
player=$!
for _ in $(seq 600); do [ -e "$work/control/stalled-$((proxy_base + 2))" ] && break; sleep 0.1; done
[ -e "$work/control/stalled-$((proxy_base + 2))" ] || fail "host 2 never started to download v4"
staging=$(on_host 2 ls "$base/.droot/staging")
[ -n "$staging" ] || fail "host 2 is not unpacking"
docker kill "$name-2"
rm "$work/control/stall-$((proxy_base + 2))"
wait $player || true
grep -q "^fatal: \[$name-2\]: UNREACHABLE" "$work/v4.log" || grep -q "^fatal: \[$name-2\]: FAILED" "$work/v4.log" ||
    fail "host 2's death was not reported"
for n in 1 3; do
    expect_serves $n v4
    [ "$(recap v4 $n failed)" = 0 ] || fail "host $n failed with host 2"
done

docker start "$name-2"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$((ssh_base + 2))") 2>/dev/null && break; sleep 0.1; done
# Nothing half-done became a release; the staging directory waits for the next run.
expect_current 2 v2
! has_release 2 v4 || fail "host 2 has a v4 release from a killed download"
[ -n "$(on_host 2 ls "$base/.droot/staging")" ] || fail "the killed download left no staging directory"

# First in check mode, which must also foresee that host 2's prune deletes the failed v3.
check_then_run v4-rerun deploy.yml -e app_version=v4
[ "$play_rc" -eq 0 ] || fail "the rerun of v4 failed"
steps_changed v4-rerun 2 | grep -qw prune || fail "host 2 pruned nothing on the rerun"
for n in 1 2 3; do expect_serves $n v4; expect_current $n v4; done
[ "$(recap v4-rerun 1 changed)" = 0 ] || fail "host 1 changed on the rerun"
[ "$(recap v4-rerun 3 changed)" = 0 ] || fail "host 3 changed on the rerun"
[ -z "$(on_host 2 ls "$base/.droot/staging")" ] || fail "the killed download's staging directory is still there"
# keep (3) counted only good releases on host 2: the prune deleted the failed v3, not v1.
for version in v1 v2 v4; do has_release 2 $version || fail "host 2 lost $version"; done
! has_release 2 v3 || fail "host 2 kept the failed v3 in place of a good release"

# --- a directory store on the controller: the archive is copied to the host -------------------
# The host also lacks a library the modules need: the prepare step installs Debian's package.
on_host 3 dpkg --remove python3-zstandard
if on_host 3 python3 -c 'import zstandard' 2>/dev/null; then fail "python3-zstandard is still there"; fi

local_args=(-e app_version=v1 -e droot_app=webapp-local -e "droot_store=$work/store" --limit "$name-3"
    -e app_port=$((app_base + 100)) -e droot_health_url=http://127.0.0.1:$((app_base + 100))/)
check_then_run local deploy.yml "${local_args[@]}"
[ "$play_rc" -eq 0 ] || fail "deploy from the directory store failed"
[ "$(curl -fsS "http://127.0.0.1:$((app_base + 100))/")" = "webapp v1" ] || fail "the app from the directory store does not answer"
on_host 3 python3 -c 'import zstandard' || fail "the prepare step did not install python3-zstandard"
copied() { task_output "$1" "Copy the archive, then its manifest, from the controller's store" | grep -q "^changed: \[$name-3\]"; }
copied local || fail "the archive was not copied to the host"
if on_host 3 test -e /var/cache/droot/webapp-local/webapp-local.tar.zst; then fail "the host's copy of the archive stayed"; fi
release_before=$(on_host 3 stat -c '%i %Y' "/var/containers/webapp-local/releases/$(release_of v1)")
play local-again deploy.yml "${local_args[@]}"
[ "$(recap local-again 3 changed)" = 0 ] || fail "the second deploy from the directory store changed something"
if copied local-again; then fail "the archive was copied again"; fi
[ "$release_before" = "$(on_host 3 stat -c '%i %Y' "/var/containers/webapp-local/releases/$(release_of v1)")" ] ||
    fail "the release was unpacked again"

# A new version from the directory store, given as an image (its id is known in check mode).
local_v2_args=(-e droot_image="$name-app:v2" -e '{"droot_build": {}}' "${local_args[@]:2}")
check_then_run local-v2 deploy.yml "${local_v2_args[@]}"
[ "$play_rc" -eq 0 ] || fail "deploy of an image from the directory store failed"
[ "$(curl -fsS "http://127.0.0.1:$((app_base + 100))/")" = "webapp v2" ] || fail "the image from the directory store does not answer"
# Then check mode, which knows the image id, predicts that the same image again changes nothing.
state >"$work/local-v2-again-check.before"
play local-v2-again-check deploy.yml "${local_v2_args[@]}" --check
[ "$play_rc" -eq 0 ] || fail "the check-mode deploy of the same image failed"
[ "$(recap local-v2-again-check 3 changed)" = 0 ] || fail "check mode reported changes for the image that runs: $(steps_changed local-v2-again-check 3)"
state >"$work/local-v2-again-check.after"
diff "$work/local-v2-again-check.before" "$work/local-v2-again-check.after" | head -n 40 || fail "the check-mode run changed the above"

# --- two rollbacks walk back, never to the release the first one left ----------------------------
# Host 1 went v1 v2 v3 v4 (v1 pruned); hosts 2 and 3 went v1 v2 v4 (host 2's v3 failed).
# The first runs in one play with a deploy of the running version: the variables and facts the
# deploy leaves do not trip the rollback's check for unknown variables.
play rollback-1 deploy_rollback.yml -e app_version=v4
[ "$play_rc" -eq 0 ] || fail "the first rollback, after a deploy in the same play, failed"
play rollback-2 rollback.yml
[ "$play_rc" -eq 0 ] || fail "the second rollback failed"
expect_serves 1 v2
expect_current 1 v2
for n in 2 3; do expect_serves $n v1; expect_current $n v1; done
for n in 1 2 3; do has_release $n v4 || fail "host $n: a rollback deleted v4"; done

# --- a health check that no release passes: the message says what failed --------------------------
# Host 1 runs v2 and has v4 on disk: v4 fails the check, v2 is put back and runs, and fails it too.
play unhealthy deploy.yml -e app_version=v4 -e droot_health_content=no-such-answer --limit "$name-1"
[ "$play_rc" -ne 0 ] || fail "a deploy whose health check fails succeeded"
expect_serves 1 v2
expect_current 1 v2
grep -E "^fatal: \[$name-1\]: FAILED! => .*deploy of webapp release $(release_of v4) failed on $name-1 at step health .*; release $(release_of v2) is back and started, but it failed the health check too \(.*no-such-answer" "$work/unhealthy.log" ||
    fail "the failure does not say that release v2 is back and started and failed the health check too"
if grep -q "back failed too" "$work/unhealthy.log"; then fail "the failure says putting v2 back failed"; fi

# --- without a health check, the jail must still run after droot_health_delay seconds -------------

play no-check deploy.yml -e app_version=v4 -e droot_health_url= --limit "$name-1"
[ "$play_rc" -eq 0 ] || fail "a deploy without a health check failed although the jail runs"
expect_serves 1 v4
# A jail that ends fails that check: a command that exits after half a second, with a delay of 1 s.
play no-check-dies deploy.yml -e app_version=v2 -e droot_health_url= -e '{"droot_command": ["/bin/sleep", "0.5"]}' --limit "$name-1"
[ "$play_rc" -ne 0 ] || fail "a deploy whose jail ends passed the check that it still runs"
grep -E "^fatal: \[$name-1\]: FAILED! => .*release $(release_of v2) failed on $name-1 at step health \(task 'Fail unless the jail still runs': the jail's process [0-9]+ ended within 1 s" "$work/no-check-dies.log" ||
    fail "the failure does not say that the jail of v2 ended"

# --- every hook point runs where it is, when it is set -----------------------------------------------
# Host 3's app from the directory store runs v2 and has v1 on disk. Each hook file notes its point;
# a deploy of v1, then a rollback (to v2), must note every point of their steps, in order. A failing hook fails the host naming the hook's step, and the rescue runs.
hooks_dir=$work/hooks-all
mkdir -p "$hooks_dir"
hook_vars="{"
for point in before after; do
    for step in ship prepare fetch select stop umount switch start health prune; do
        cat >"$hooks_dir/${point}_$step.yml" <<HOOK
- name: Note the hook point ${point}_$step
  ansible.builtin.shell: echo ${point}_$step >> /var/log/droot-hook-points
  changed_when: true
HOOK
        hook_vars="$hook_vars\"droot_${point}_${step}_tasks_file\": \"$hooks_dir/${point}_$step.yml\", "
    done
done
hook_vars="${hook_vars%, }}"
on_host 3 rm -f /var/log/droot-hook-points
play hooks-deploy deploy.yml -e droot_image="$name-app:v1" -e '{"droot_build": {}}' "${local_args[@]:2}" -e "$hook_vars"
[ "$play_rc" -eq 0 ] || fail "the deploy with every hook set failed"
expected_deploy="before_ship after_ship before_prepare after_prepare before_fetch after_fetch before_stop after_stop before_umount after_umount before_switch after_switch before_start after_start before_health after_health before_prune after_prune"
# shellcheck disable=SC2016 # the dollar signs are awk fields, not shell variables
[ "$(on_host 3 awk '{ printf "%s%s", sep, $1; sep = " " }' /var/log/droot-hook-points)" = "$expected_deploy" ] ||
    fail "the deploy ran the hooks $(on_host 3 cat /var/log/droot-hook-points | tr '\n' ' '), not $expected_deploy"
on_host 3 rm -f /var/log/droot-hook-points
play hooks-rollback rollback.yml --limit "$name-3" -e droot_app=webapp-local -e "droot_store=$work/store" \
    -e app_port=$((app_base + 100)) -e droot_health_url=http://127.0.0.1:$((app_base + 100))/ -e "$hook_vars"
[ "$play_rc" -eq 0 ] || fail "the rollback with every hook set failed"
expected_rollback="before_select after_select before_stop after_stop before_umount after_umount before_switch after_switch before_start after_start before_health after_health"
# shellcheck disable=SC2016 # the dollar signs are awk fields, not shell variables
[ "$(on_host 3 awk '{ printf "%s%s", sep, $1; sep = " " }' /var/log/droot-hook-points)" = "$expected_rollback" ] ||
    fail "the rollback ran the hooks $(on_host 3 cat /var/log/droot-hook-points | tr '\n' ' '), not $expected_rollback"
[ "$(curl -fsS "http://127.0.0.1:$((app_base + 100))/")" = "webapp v2" ] || fail "the rollback with hooks did not go back to v2"
printf -- '- name: Fail as a hook\n  ansible.builtin.fail:\n    msg: the hook says no\n' >"$hooks_dir/failing.yml"
play hooks-failing deploy.yml -e droot_image="$name-app:v1" -e '{"droot_build": {}}' "${local_args[@]:2}" \
    -e "droot_before_start_tasks_file=$hooks_dir/failing.yml"
[ "$play_rc" -ne 0 ] || fail "a deploy whose hook fails succeeded"
grep -E "^fatal: \[$name-3\]: FAILED! => .*failed on $name-3 at step start \(task 'Fail as a hook': the hook says no\); back on release $(release_of v2)" "$work/hooks-failing.log" ||
    fail "the failing hook's deploy did not name step start and go back to v2"
[ "$(curl -fsS "http://127.0.0.1:$((app_base + 100))/")" = "webapp v2" ] || fail "v2 does not run after the failing hook"

if [ "${failures:-0}" -ne 0 ]; then echo "deploy_multihost: $failures checks failed" >&2; exit 1; fi

echo "deploy_multihost: all scenarios passed"
