"""droot_export against the seed pipeline, same image, same S3 endpoint, one run.

Seed (upstream droot's README): ``droot export IMAGE | gzip -cq | aws s3 cp - s3://...``; the
export part is ``docker create`` + ``docker export`` of that container (what droot export
streams). droot.core: the droot_export module run as Ansible runs it, one process, with
default options (zstd level 3, one thread per CPU, parallel multipart upload).

Prints both wall times, the ratio droot_export / seed (target <= 0.3), and the peak RSS of the
droot_export process (target < 200 MB for a 1 GB image).

The default image (about 1 GB, built offline from setup_docker's busybox image if missing):
300 MB of random bytes (already-compressed assets), 390 MB of decimal numbers, 310 MB of hex
dump text. Usage: bench_export.py [--image NAME] [--endpoint URL] [--runs N]
"""

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.dirname(HERE)
MODULE = os.path.join(COLLECTION, "plugins", "modules", "droot_export.py")
sys.path.insert(0, HERE)
import bench_fetch  # noqa: E402  pylint: disable=wrong-import-position
BENCH_IMAGE = "droot-bench/export-1g:latest"
BENCH_DOCKERFILE = """\
FROM droot-test/busybox:latest
RUN mkdir -p /data && dd if=/dev/urandom of=/data/assets.bin bs=1M count=300 2>/dev/null \\
 && seq 1 45000000 > /data/numbers.txt \\
 && od -A x -t x1 -v /data/assets.bin | head -c 310000000 > /data/assets.hex
"""
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def run(command, **kwargs):
    return subprocess.run(command, check=True, **kwargs)


def ensure_image(image):
    if subprocess.run(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL, check=False).returncode == 0:
        return
    if image != BENCH_IMAGE:
        sys.exit("image %s does not exist" % image)
    print("building %s offline (about a minute)..." % image, flush=True)
    with tempfile.TemporaryDirectory() as context:
        with open(os.path.join(context, "Dockerfile"), "w") as handle:
            handle.write(BENCH_DOCKERFILE)
        run(["docker", "build", "--network", "none", "-q", "-t", image, context],
            env=dict(os.environ, DOCKER_BUILDKIT="0"), stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_bucket(endpoint, bucket):
    import boto3
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                 region_name="us-east-1").create_bucket(Bucket=bucket)


def aws_cli():
    return shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")


def export_script(image, consumer):
    """``docker export`` of a container made for it, piped into ``consumer`` (a shell pipeline), as one bash
    script with the container's removal included (bench/run.py measures such a script whole)."""
    name = shlex.quote("droot-bench-seed-%s" % os.urandom(6).hex())
    return ("set -e -o pipefail\n"
            "docker create --name %s --network none %s /bin/true >/dev/null\n"
            "trap 'docker rm -f %s >/dev/null' EXIT\n"
            "docker export %s | %s\n" % (name, shlex.quote(image), name, name, consumer))


def seed_script(image, endpoint, url):
    """The seed pipeline: docker create; docker export | gzip -cq | aws s3 cp -; docker rm."""
    return export_script(image, "gzip -cq | %s s3 cp --endpoint-url %s - %s"
                         % (shlex.quote(aws_cli()), shlex.quote(endpoint), shlex.quote(url)))


def seed_pipeline(image, endpoint, url):
    start = time.monotonic()
    run(["bash", "-c", seed_script(image, endpoint, url)], env=dict(os.environ, **CREDENTIALS))
    return time.monotonic() - start


def module_args(image, endpoint, url, extra=None):
    """droot_export's arguments for a run against the benchmark's S3 endpoint."""
    return dict({"image": image, "dest": url, "endpoint_url": endpoint, "region": "us-east-1",
                 "access_key": "bench", "secret_key": "bench", "force": True}, **(extra or {}))


def droot_export(image, endpoint, url, extra, collections):
    args = module_args(image, endpoint, url, extra)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=collections)
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, MODULE, handle.name], stdout=subprocess.PIPE, env=env)
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - start
    os.unlink(handle.name)
    result = json.loads(output)
    if status != 0 or result.get("failed"):
        sys.exit("droot_export failed: %s" % result.get("msg"))
    return elapsed, usage.ru_maxrss / 1024.0, result


def export_size(image):
    container = run(["docker", "create", "--name", "droot-bench-size-%s" % os.urandom(6).hex(), "--network", "none",
                     image, "/bin/true"], stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        output = run(["bash", "-o", "pipefail", "-c", "docker export %s | wc -c" % container],
                     stdout=subprocess.PIPE, text=True).stdout
    finally:
        run(["docker", "rm", "-f", container], stdout=subprocess.DEVNULL)
    return int(output)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=BENCH_IMAGE)
    parser.add_argument("--endpoint", help="an S3 endpoint; default: a moto_server started here")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--compression-level", type=int)
    args = parser.parse_args()
    ensure_image(args.image)
    workdir = tempfile.mkdtemp(prefix="droot-bench-export-")
    collections = bench_fetch.collection_path(workdir)
    moto = None
    endpoint = args.endpoint
    if endpoint is None:
        moto = bench_fetch.Moto(free_port(), workdir)
        endpoint = moto.endpoint
    try:
        bucket = "droot-bench-%d" % os.getpid()
        make_bucket(endpoint, bucket)
        size = export_size(args.image)
        print("image %s: docker export is %.0f MB; CPUs: %d" % (args.image, size / 1e6, os.cpu_count()))
        extra = {}
        if args.compression_level:
            extra["compression_level"] = args.compression_level
        for number in range(args.runs):
            seed = seed_pipeline(args.image, endpoint, "s3://%s/seed-%d.tar.gz" % (bucket, number))
            ours, rss, result = droot_export(args.image, endpoint, "s3://%s/droot-%d.tar.zst" % (bucket, number),
                                             extra, collections)
            print("run %d: seed pipeline %.1f s (docker export | gzip -cq | aws s3 cp -)" % (number + 1, seed))
            print("run %d: droot_export  %.1f s (zstd, %.0f MB archive), peak RSS %.0f MB"
                  % (number + 1, ours, result["size"] / 1e6, rss))
            print("run %d: ratio droot_export / seed = %.2f (target <= 0.3); peak RSS %s 200 MB"
                  % (number + 1, ours / seed, "<" if rss < 200 else ">="))
    finally:
        if moto is not None:
            moto.stop()
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
