# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's images, built offline and kept between runs.

- droot-bench-base: bench_fetch's Debian root (mmdebstrap minbase with python3, perl, openssl,
  ca-certificates), less its device nodes, imported into Docker;
- droot-bench-app: the base and a small web app (images/app): the realistic image;
- droot-bench-large-<N>mb: the app and N MB of data (images/large/make_data.py).

Each image carries a label with the hash of what made it; a changed recipe rebuilds it.
"""

import hashlib
import os
import subprocess
import tarfile

import bench_fetch

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE_LABEL = "org.droot-core.bench-recipe"


def _recipe(*parts):
    digest = hashlib.sha256()
    for part in parts:
        if os.path.isdir(part):
            for directory, dirs, files in sorted(os.walk(part)):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(directory, name)
                    digest.update(os.path.relpath(path, part).encode() + b"\0")
                    with open(path, "rb") as handle:
                        digest.update(handle.read())
        elif os.path.isfile(part):
            with open(part, "rb") as handle:
                digest.update(handle.read())
        else:
            digest.update(part.encode())
    return digest.hexdigest()[:16]


def _present(image, recipe):
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             '{{ index .Config.Labels "%s" }}' % RECIPE_LABEL, image],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == recipe


def _image_id(image):
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True,
                          text=True, check=True).stdout.strip()


def _build(image, context, recipe, log, **build_args):
    log("building %s" % image)
    command = ["docker", "build", "--network", "none", "--quiet", "--tag", image, "--label",
               "%s=%s" % (RECIPE_LABEL, recipe)]
    for name, value in build_args.items():
        command += ["--build-arg", "%s=%s" % (name, value)]
    # The classic builder: BuildKit may be missing, and it is the one --network none is tested with.
    built = subprocess.run(command + [context], capture_output=True, text=True, check=False,
                           env=dict(os.environ, DOCKER_BUILDKIT="0"))
    if built.returncode != 0:
        raise SystemExit("building %s failed:\n%s" % (image, (built.stdout + built.stderr)[-3000:]))


def _without_devices(rootfs, out):
    """``rootfs`` less its device nodes: images from a registry carry none (the runtime makes /dev)."""
    with tarfile.open(rootfs) as source, tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as target:
        for member in source:
            if not (member.ischr() or member.isblk()):
                target.addfile(member, source.extractfile(member) if member.isreg() else None)
    os.rename(out + ".tmp", out)


def ensure_base(workdir, log):
    image = "droot-bench-base:latest"
    rootfs = bench_fetch.build_rootfs(workdir)
    recipe = _recipe(rootfs, "without device nodes")
    if not _present(image, recipe):
        log("importing %s" % image)
        filtered = os.path.join(workdir, "base.tar")
        _without_devices(rootfs, filtered)
        try:
            subprocess.run(["docker", "import", "--change", "LABEL %s=%s" % (RECIPE_LABEL, recipe), filtered, image],
                           check=True, stdout=subprocess.DEVNULL)
        finally:
            os.unlink(filtered)
    return image


def ensure_app(workdir, log):
    base = ensure_base(workdir, log)
    image = "droot-bench-app:latest"
    context = os.path.join(HERE, "images", "app")
    recipe = _recipe(_image_id(base), context)
    if not _present(image, recipe):
        _build(image, context, recipe, log, BASE=base)
    return image


def ensure_large(workdir, data_mb, log):
    app = ensure_app(workdir, log)
    image = "droot-bench-large-%dmb:latest" % data_mb
    context = os.path.join(HERE, "images", "large")
    recipe = _recipe(_image_id(app), context, str(data_mb))
    if not _present(image, recipe):
        _build(image, context, recipe, log, BASE=app, DATA_MB=data_mb)
    return image
