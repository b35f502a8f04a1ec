# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot_fetch against the seed pipeline, from the same moto_server, in one run.

Seed:   aws s3 cp s3://B/app.tar.gz - | tar -xpzf - -C STAGING && mv -T STAGING DEST
Fetch:  the droot_fetch module, run on the host the way Ansible runs it there (one Python
        process with the module's arguments), with layout=replace into a fresh DEST, once on a
        zstd archive with its manifest (what droot_export writes) and once on the seed's own
        gzip object without a manifest.

Each round runs the three in a rotating order, each into a directory of its own, with a sync
before and after (not timed) so that writeback of one run does not land on the next; trees are
deleted only at the end (see SETTLE_SECONDS). The medians are compared. Needs root, Docker and mmdebstrap (for the image; or --rootfs TAR).

    sudo /opt/droot-venv/bin/python bench/bench_fetch.py [--rounds 5] [--rootfs export.tar]
"""

import argparse
import datetime
import hashlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_BIN = os.path.dirname(sys.executable)
BUCKET = "droot-bench-fetch"
PREFIX = "droot-bench-fetch"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, **kwargs)


def collection_path(workdir):
    """A directory with ansible_collections/droot/core -> this checkout, for PYTHONPATH."""
    top = os.path.join(workdir, "collections")
    link = os.path.join(top, "ansible_collections", "droot", "core")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.islink(link) and os.readlink(link) != REPO:
        os.unlink(link)  # made by another checkout: benchmark this one
    if not os.path.islink(link):
        os.symlink(REPO, link)
    return top


def build_rootfs(workdir):
    """A Debian root as `docker export` gives it: mmdebstrap -> docker import -> export."""
    out = os.path.join(workdir, "export.tar")
    if os.path.exists(out):
        return out
    debootstrapped = os.path.join(workdir, "mmdebstrap.tar")
    log("building a Debian root with mmdebstrap (about a minute)")
    run(["mmdebstrap", "--quiet", "--variant=minbase",
         "--include=python3,perl,openssl,ca-certificates,libcap2-bin", "bookworm", debootstrapped])
    image = "%s:%d" % (PREFIX, os.getpid())
    run(["docker", "import", debootstrapped, image], stdout=subprocess.DEVNULL)
    container = None
    try:
        container = subprocess.run(["docker", "create", "--network", "none", image, "/bin/true"],
                                   check=True, capture_output=True, text=True).stdout.strip()
        with open(out + ".tmp", "wb") as handle:
            run(["docker", "export", container], stdout=handle)
        os.rename(out + ".tmp", out)
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)
        os.unlink(debootstrapped)
    return out


def make_archives(workdir, rootfs, collections):
    """The seed's gzip (gzip -6, no manifest) and droot_export's zstd with its manifest."""
    gz = os.path.join(workdir, "app.tar.gz")
    zst = os.path.join(workdir, "app.tar.zst")
    # The archives are cached for the root they were made from, and remade for another one.
    stamp = os.path.join(workdir, "archives.source")
    st = os.stat(rootfs)
    source = "%s %d %d" % (os.path.realpath(rootfs), st.st_size, st.st_mtime_ns)
    try:
        with open(stamp, encoding="utf-8") as handle:
            current = handle.read() == source
    except FileNotFoundError:
        current = False
    if not current:
        for path in (gz, zst, zst + ".json"):
            if os.path.exists(path):
                os.unlink(path)
    if not os.path.exists(gz):
        with open(rootfs, "rb") as src, open(gz + ".tmp", "wb") as dst:
            run(["gzip", "-6", "-c"], stdin=src, stdout=dst)
        os.rename(gz + ".tmp", gz)
    if not os.path.exists(zst + ".json"):
        sys.path.insert(0, collections)
        from ansible_collections.droot.core.plugins.module_utils._internal import archive
        sha = hashlib.sha256()
        tar_sha = hashlib.sha256()

        class Hashing:
            def __init__(self, handle):
                self.handle = handle

            def write(self, data):
                sha.update(data)
                return self.handle.write(data)

        with open(rootfs, "rb") as src, open(zst, "wb") as dst:
            writer = archive.compressing_writer(Hashing(dst), "zstd")
            for block in iter(lambda: src.read(1 << 20), b""):
                tar_sha.update(block)
                writer.write(block)
            writer.close()
        manifest = {"format": 1, "archive": "app.tar.zst", "sha256": sha.hexdigest(),
                    "size": os.path.getsize(zst), "compression": "zstd",
                    "image_id": "sha256:" + tar_sha.hexdigest(), "config": {},
                    "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with open(zst + ".json", "w", encoding="utf-8") as handle:
            json.dump(manifest, handle)
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(source)
    return gz, zst


class Moto:
    def __init__(self, port, workdir):
        self.endpoint = "http://127.0.0.1:%d" % port
        self.log = open(os.path.join(workdir, "moto.log"), "wb")
        self.process = subprocess.Popen(
            [os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit("moto_server did not start on %s (see moto.log)" % self.endpoint)
                time.sleep(0.2)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def s3_env():
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    return env


def upload(moto, files):
    import boto3
    client = boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    for path in files:
        client.upload_file(path, BUCKET, os.path.basename(path))


# ext4 skips inodes freed in the last ~30 s when it allocates new ones, which makes creating
# files right after deleting a big tree several times slower, for any extractor. So every run
# writes a fresh directory and the trees are deleted only at the end (then waited out once).
SETTLE_SECONDS = 35


class Runs:
    """Fresh directories for each timed run, all removed at the end."""

    def __init__(self, workdir):
        self.top = os.path.join(workdir, "runs")
        self.count = 0
        if os.path.exists(self.top):
            shutil.rmtree(self.top)
            log("removed an earlier run's trees; waiting %d s for ext4 to settle" % SETTLE_SECONDS)
            time.sleep(SETTLE_SECONDS)
        os.makedirs(self.top)

    def new(self, name):
        self.count += 1
        path = os.path.join(self.top, "%03d-%s" % (self.count, name))
        os.mkdir(path)
        return path

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)


def timed(cmd, env):
    """Wall seconds and standard output of one command."""
    start = time.monotonic()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit("%s failed:\n%s\n%s" % (cmd[:3], result.stdout[-2000:], result.stderr[-2000:]))
    return elapsed, result.stdout


def settle():
    """Write back what the last run left dirty, so it is not charged to the next one."""
    os.sync()


def seed_script(endpoint, url, staging, dest, existing=False, tar="tar -xpzf -"):
    """The seed's fetch into an existing empty STAGING; `mv -T` cannot replace a non-empty DEST, so
    with ``existing`` the old tree is removed first (what users of the seed do)."""
    quoted = dict((key, shlex.quote(value)) for key, value in (
        ("aws", os.path.join(VENV_BIN, "aws")), ("endpoint", endpoint), ("url", url), ("staging", staging),
        ("dest", dest)))
    return ("set -e -o pipefail; {aws} --only-show-errors --endpoint-url {endpoint} s3 cp {url} - | %s -C {staging}; "
            "%smv -T {staging} {dest}" % (tar, "rm -rf {dest}; " if existing else "")).format(**quoted)


def module_args(endpoint, src, dest, **extra):
    """droot_fetch's arguments: layout replace (the seed's `mv -T`), the benchmark's S3 endpoint.

    The bench images are Debian's, with setuid programs: layout replace keeps them only when allowed,
    as the seed's tar does.
    """
    return dict({"src": src, "dest": dest, "layout": "replace", "allow_privileged_files": True,
                 "endpoint_url": endpoint, "access_key": "bench", "secret_key": "bench", "region": "us-east-1"},
                **extra)


def seed_run(moto, runs):
    top = runs.new("seed")
    staging = os.path.join(top, "staging")
    dest = os.path.join(top, "dest")
    os.mkdir(staging)
    script = seed_script(moto.endpoint, "s3://%s/app.tar.gz" % BUCKET, staging, dest)
    settle()
    seconds = timed(["bash", "-c", script], s3_env())[0]
    settle()
    return seconds


def fetch_command(moto, top, key, collections):
    # mmdebstrap's root has device nodes in /dev; the seed's tar creates them too.
    args = {"ANSIBLE_MODULE_ARGS": module_args(moto.endpoint, "s3://%s/%s" % (BUCKET, key), os.path.join(top, "dest"),
                                               allow_devices=True)}
    args_file = os.path.join(top, "args.json")
    with open(args_file, "w", encoding="utf-8") as handle:
        json.dump(args, handle)
    env = s3_env()
    env["PYTHONPATH"] = collections
    return [sys.executable, "-m", "ansible_collections.droot.core.plugins.modules.droot_fetch", args_file], env


def fetch_run(moto, runs, collections, key):
    command, env = fetch_command(moto, runs.new("fetch"), key, collections)
    settle()
    seconds, out = timed(command, env)
    settle()
    result = json.loads(out[out.index("{"):])
    if not result.get("changed") or result.get("failed"):
        raise SystemExit("droot_fetch did not fetch: %s" % out[-2000:])
    return seconds


def peak_rss_of_fetch(moto, runs, collections):
    """One extra fetch under /usr/bin/time to show memory stays bounded (archive never held)."""
    command, env = fetch_command(moto, runs.new("rss"), "app.tar.zst", collections)
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, env=env, capture_output=True, text=True,
                            check=False)
    try:
        return int(result.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=5190)
    parser.add_argument("--workdir", default="/var/tmp/droot-bench-fetch",
                        help="holds the cached image and archives and the trees (on the disk you deploy to)")
    parser.add_argument("--rootfs", help="a `docker export` tar to use instead of building one")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: both pipelines restore numeric owners")
    os.makedirs(args.workdir, exist_ok=True)
    collections = collection_path(args.workdir)
    rootfs = args.rootfs or build_rootfs(args.workdir)
    gz, zst = make_archives(args.workdir, rootfs, collections)
    log("archives: gzip %.1f MiB, zstd %.1f MiB, tar %.1f MiB"
        % (os.path.getsize(gz) / 2 ** 20, os.path.getsize(zst) / 2 ** 20, os.path.getsize(rootfs) / 2 ** 20))
    runs = Runs(args.workdir)
    moto = Moto(args.port, args.workdir)
    try:
        upload(moto, [gz, zst, zst + ".json"])
        times = {"seed (aws s3 cp | tar -xpzf; mv -T), gzip": [], "droot_fetch, zstd + manifest": [],
                 "droot_fetch, seed's gzip": []}
        contenders = [
            ("seed (aws s3 cp | tar -xpzf; mv -T), gzip", lambda: seed_run(moto, runs)),
            ("droot_fetch, zstd + manifest", lambda: fetch_run(moto, runs, collections, "app.tar.zst")),
            ("droot_fetch, seed's gzip", lambda: fetch_run(moto, runs, collections, "app.tar.gz")),
        ]
        # One untimed warm-up of each, so page cache and moto are in the same state for all.
        for contender in contenders:
            contender[1]()
        for round_number in range(args.rounds):
            order = contenders[round_number % 3:] + contenders[:round_number % 3]
            for name, function in order:
                seconds = function()
                times[name].append(seconds)
                log("round %d: %-42s %.2f s" % (round_number + 1, name, seconds))
        rss = peak_rss_of_fetch(moto, runs, collections)
    finally:
        moto.stop()
        runs.remove()
    seed = statistics.median(times["seed (aws s3 cp | tar -xpzf; mv -T), gzip"])
    print("fetch benchmark: %d rounds, %d cores, medians" % (args.rounds, os.cpu_count()))
    for name, values in times.items():
        print("  %-42s %6.2f s   (min %.2f, max %.2f)" % (name, statistics.median(values), min(values), max(values)))
    failed = False
    for name, target in (("droot_fetch, zstd + manifest", 0.5), ("droot_fetch, seed's gzip", 1.0)):
        ratio = statistics.median(times[name]) / seed
        met = ratio <= target
        failed = failed or not met
        verdict = "met" if met else "MISSED"
        print("  ratio %-36s %5.2f   target <= %.1f  %s" % (name + " / seed", ratio, target, verdict))
    if rss:
        print("  droot_fetch peak RSS: %.0f MiB (archive %.0f MiB, tar %.0f MiB)"
              % (rss / 1024, os.path.getsize(zst) / 2 ** 20, os.path.getsize(rootfs) / 2 ** 20))
    if args.check and failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
