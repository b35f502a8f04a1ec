# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""droot.core against the seed pipeline: one command, one run, JSON + table + plots.

    sudo /opt/droot-venv/bin/python bench/run.py [--quick] [--repeat N] [--hosts 1,2,4,8] ...
    make bench ARGS="..."

For each image (a realistic ~200 MB Debian + python3 + app image, and a large ~1 GB one), against
one moto_server on 127.0.0.1, each round runs every contender once, in an order rotated from round
to round:

- export + ship: the seed (`docker create`; `docker export | gzip -cq | aws s3 cp -`; `docker rm`)
  vs droot_export with zstd and with gzip;
- fetch + activate: the seed (`aws s3 cp - | tar -xpzf - -C staging; mv -T staging dest`) vs
  droot_fetch (layout replace) of droot_export's zstd archive and of the seed's own gzip object,
  into a fresh dest and into an existing one (the seed's `mv -T` cannot replace a non-empty
  dest, so its existing-dest variant removes the old tree first: `rm -rf dest; mv -T`);
- then a no-op re-run of each module (everything already up to date).

droot.core's side runs at two levels: the module's main() in a Python process of its own
(bench/engine.py: the process's wall time is what the module costs on a host, its `work_s` the
module_utils engine alone), and the same module through `ansible localhost -m` (Ansible's fixed
costs included). Last, the deploy role on 1, 2, 4 and 8 container hosts, this checkout's and
0.1.0's in the same run (bench/deploy.py). ``--sections`` runs only some of these.

Every run's wall time and the peak memory of its whole process tree (bench/measure.py) go to
bench/results/results.json; bench/report.py makes results.md and the PNG plots from it.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench_export  # noqa: E402  pylint: disable=wrong-import-position
import bench_fetch  # noqa: E402  pylint: disable=wrong-import-position
import images  # noqa: E402  pylint: disable=wrong-import-position
import measure  # noqa: E402  pylint: disable=wrong-import-position

BUCKET = "droot-bench"
VENV_BIN = os.path.dirname(sys.executable)
RESULTS = os.path.join(HERE, "results")


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def ensure_requirements():
    """The benchmark's own libraries (bench/requirements.txt), into this venv when missing."""
    try:
        import matplotlib  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
        missing = not os.path.exists(os.path.join(VENV_BIN, "py-spy")) or not shutil.which(
            "aws", path=VENV_BIN)
    except ImportError:
        missing = True
    if missing:
        log("installing bench/requirements.txt into %s" % os.path.dirname(VENV_BIN))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r",
                        os.path.join(HERE, "requirements.txt")], check=True)


class Bench:
    """Runs of one benchmark: the S3 endpoint, the collection on PYTHONPATH, the measurements."""

    def __init__(self, args, workdir, collections, moto):
        self.args = args
        self.workdir = workdir
        self.collections = collections
        self.moto = moto
        self.endpoint = moto.endpoint
        self.env = bench_fetch.s3_env()
        self.env["PYTHONPATH"] = collections
        self.ansible_env = dict(self.env, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_LOCALHOST_WARNING="false",
                                ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="true")
        self.counter = 0

    def rounds(self, label):
        return self.args.repeat_large if label == "large" else self.args.repeat

    def url(self, label, name):
        return "s3://%s/%s/%s" % (BUCKET, label, name)

    def _args_file(self, args):
        if self.counter == 0:
            shutil.rmtree(os.path.join(self.workdir, "args"), ignore_errors=True)
        self.counter += 1
        path = os.path.join(self.workdir, "args", "%04d.json" % self.counter)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
        return path

    @staticmethod
    def _check(what, run):
        if run.returncode != 0:
            raise SystemExit("%s failed (exit %d):\n%s\n%s"
                             % (what, run.returncode, run.stdout[-3000:], run.stderr[-3000:]))

    def engine(self, module, args, what):
        """The module's main() in a Python process of its own (bench/engine.py)."""
        os.sync()
        run = measure.run([sys.executable, os.path.join(HERE, "engine.py"), module, self._args_file(args)],
                          env=self.env)
        self._check(what, run)
        report = _engine_report(run.stdout)
        return dict(_measured(run), work_s=report["work_s"], startup_s=report["startup_s"],
                    result=_trim(report["result"]))

    def ansible(self, module, args, what):
        """The module through `ansible localhost -m`, Ansible's fixed costs included."""
        os.sync()
        command = [os.path.join(VENV_BIN, "ansible"), "localhost", "-c", "local", "-e",
                   "ansible_python_interpreter=%s" % sys.executable, "-m", "droot.core.%s" % module,
                   "-a", json.dumps(args)]
        run = measure.run(command, env=self.ansible_env, cwd=self.workdir)
        self._check(what, run)
        text = run.stdout
        result = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
        return dict(_measured(run), result=_trim(result))

    def shell(self, script, what):
        os.sync()
        run = measure.run(["bash", "-c", script], env=self.env)
        self._check(what, run)
        return _measured(run)

    def profile(self, module, args, output):
        """One more engine run under py-spy (all threads, idle time included): raw stacks to ``output``."""
        os.sync()
        command = [os.path.join(VENV_BIN, "py-spy"), "record", "--idle", "--threads", "--rate", "250",
                   "--format", "raw", "--output", output, "--", sys.executable, os.path.join(HERE, "engine.py"),
                   module, self._args_file(args)]
        run = measure.run(command, env=self.env)
        self._check("py-spy of %s" % module, run)
        return _engine_report(run.stdout)["work_s"]


def _measured(run):
    """What results.json keeps of a measure.Result."""
    return {"seconds": run.seconds, "peak_mib": run.peak_mib, "peak_process_mib": run.peak_process_mib,
            "cpu_s": run.cpu_s, "busy_cpus": run.busy_cpus}


def _engine_report(stdout):
    """engine.py's JSON line (py-spy adds lines of its own)."""
    line = [text for text in stdout.splitlines() if text.startswith('{"')][-1]
    return json.loads(line)


def _trim(result):
    keep = ("changed", "failed", "msg", "size", "sha256", "compression", "image_id", "release", "downloaded",
            "stats", "archive_size")
    return dict((key, result[key]) for key in keep if key in result)


def rotated(items, number):
    shift = number % len(items)
    return items[shift:] + items[:shift]


def export_section(bench, label, image):
    """export + ship: seed vs droot_export zstd and gzip, then the no-op re-run."""
    seed_url = bench.url(label, "seed.tar.gz")
    urls = {"zstd": bench.url(label, "droot.tar.zst"), "gzip": bench.url(label, "droot.tar.gz")}

    def droot(compression, level):
        args = bench_export.module_args(image, bench.endpoint, urls[compression], {"compression": compression})
        if level == "ansible":
            return lambda: bench.ansible("droot_export", args, "droot_export %s via ansible" % compression)
        return lambda: bench.engine("droot_export", args, "droot_export %s" % compression)

    rounds = []
    for number in range(bench.rounds(label)):
        contenders = [
            ("seed", lambda: bench.shell(bench_export.seed_script(image, bench.endpoint, seed_url), "seed export")),
            ("zstd", droot("zstd", "engine")),
            ("gzip", droot("gzip", "engine")),
            # The floor for any exporter: the Docker daemon's export alone, into /dev/null; and
            # the seed's pipeline with the zstd program (all CPUs) instead of gzip.
            ("docker_export", lambda: bench.shell(bench_export.export_script(image, "cat >/dev/null"),
                                                  "docker export alone")),
            ("zstd_pipeline", lambda: bench.shell(bench_export.export_script(
                image, "zstd -q -3 -T0 | %s s3 cp --endpoint-url %s - %s" % (
                    bench_export.aws_cli(), bench.endpoint, bench.url(label, "pipeline.tar.zst"))),
                "docker export | zstd | aws s3 cp")),
        ]
        if number < bench.args.ansible_repeat:
            contenders += [("zstd_ansible", droot("zstd", "ansible")), ("gzip_ansible", droot("gzip", "ansible"))]
        runs = {}
        for name, function in rotated(contenders, number):
            runs[name] = function()
            log("%s export round %d: %-13s %6.2f s  %5.0f MiB"
                % (label, number + 1, name, runs[name]["seconds"], runs[name]["peak_mib"]))
        rounds.append(runs)
    noop_args = bench_export.module_args(image, bench.endpoint, urls["zstd"], {"force": False})
    noop = {"noop": bench.engine("droot_export", noop_args, "droot_export no-op"),
            "noop_ansible": bench.ansible("droot_export", noop_args, "droot_export no-op via ansible")}
    for name, run in noop.items():
        if run["result"].get("changed"):
            raise SystemExit("droot_export's re-run changed something: %s" % run["result"])
        log("%s export %-13s %6.2f s" % (label, name, run["seconds"]))
    stored = {"seed": bench_export_object_size(bench, seed_url)}
    for compression, url in urls.items():
        stored[compression] = bench_export_object_size(bench, url)
    return {"rounds": rounds, "noop": noop, "stored_bytes": stored}


def bench_export_object_size(bench, url):
    import boto3  # pylint: disable=import-outside-toplevel
    client = boto3.client("s3", endpoint_url=bench.endpoint, aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
    bucket, key = url[len("s3://"):].split("/", 1)
    return client.head_object(Bucket=bucket, Key=key)["ContentLength"]


class TreesFilesystem:
    """A journaled ext4 of the benchmark's own (a sparse file on a loop device) for the fetched trees.

    This machine's root file system is an ext4 without a journal, where creating inodes is slow
    for about 30 s after any deletion (ext4 then skips inodes freed recently), and other
    developers delete trees all the time: on it, both pipelines spend most of their time in the
    kernel, by amounts that change from run to run. A deployment host's data disk is journaled;
    so is this one, and no one else writes to it. ``--trees-on DIR`` puts the trees in DIR instead.
    """

    def __init__(self, workdir, size_gib):
        self.size = size_gib << 30
        self.image = os.path.join(workdir, "trees.img")
        self.mountpoint = os.path.join(workdir, "trees-fs")

    def __enter__(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        if os.path.ismount(self.mountpoint):
            subprocess.run(["umount", self.mountpoint], check=True)
        with open(self.image, "wb") as handle:
            handle.truncate(self.size)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "droot-bench", self.image], check=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.mountpoint], check=True)
        return self.mountpoint

    def __exit__(self, *exc_info):
        subprocess.run(["umount", self.mountpoint], check=False)
        os.unlink(self.image)


def fetch_section(bench, label):
    """fetch + activate: seed vs droot_fetch (zstd + manifest, and the seed's gzip), fresh and existing."""
    sources = {"zstd": bench.url(label, "droot.tar.zst"), "gzip": bench.url(label, "seed.tar.gz")}
    runs_dir = bench_fetch.Runs(os.path.join(bench.trees, label))

    def fetch_args(compression, top):
        return bench_fetch.module_args(bench.endpoint, sources[compression], os.path.join(top, "dest"))

    def seed(top, url, existing=False, tar="tar -xpzf -"):
        staging = os.path.join(top, "staging")
        os.mkdir(staging)
        return bench_fetch.seed_script(bench.endpoint, url, staging, os.path.join(top, "dest"), existing, tar)

    def droot_chain(first, second, level):
        def chain(runs):
            top = runs_dir.new("droot-%s-%s" % (first, level))
            for compression, state in ((first, "fresh"), (second, "existing")):
                name = "%s_%s%s" % (compression, state, "_ansible" if level == "ansible" else "")
                args = fetch_args(compression, top)
                if level == "ansible":
                    runs[name] = bench.ansible("droot_fetch", args, "droot_fetch %s via ansible" % name)
                else:
                    runs[name] = bench.engine("droot_fetch", args, "droot_fetch %s" % name)
                if not runs[name]["result"].get("changed"):
                    raise SystemExit("droot_fetch %s did not fetch: %s" % (name, runs[name]["result"]))
            return top
        return chain

    def seed_chain(runs):
        top = runs_dir.new("seed")
        for state in ("fresh", "existing"):
            runs["seed_" + state] = bench.shell(seed(top, sources["gzip"], state == "existing"), "seed fetch")
        return top

    def native_zstd(runs):
        """The seed's pipeline on droot_export's zstd archive (GNU tar and the zstd program): native speed."""
        top = runs_dir.new("tar-zstd")
        runs["tar_zstd_fresh"] = bench.shell(seed(top, sources["zstd"], tar="tar --zstd -xpf -"),
                                             "aws s3 cp | tar --zstd")
        return top

    rounds = []
    last_zstd_dest = None
    for number in range(bench.rounds(label)):
        chains = [("seed", seed_chain), ("droot-a", droot_chain("gzip", "zstd", "engine")),
                  ("droot-b", droot_chain("zstd", "gzip", "engine")), ("tar-zstd", native_zstd)]
        if number < bench.args.ansible_repeat:
            chains += [("ansible-a", droot_chain("gzip", "zstd", "ansible")),
                       ("ansible-b", droot_chain("zstd", "gzip", "ansible"))]
        runs = {}
        for name, chain in rotated(chains, number):
            top = chain(runs)
            if name == "droot-a":
                last_zstd_dest = top
        for name in sorted(runs):
            log("%s fetch round %d: %-22s %6.2f s  %5.0f MiB"
                % (label, number + 1, name, runs[name]["seconds"], runs[name]["peak_mib"]))
        rounds.append(runs)
    # droot-a ends on the zstd release: fetching it again is the no-op.
    noop = {"noop": bench.engine("droot_fetch", fetch_args("zstd", last_zstd_dest), "droot_fetch no-op"),
            "noop_ansible": bench.ansible("droot_fetch", fetch_args("zstd", last_zstd_dest),
                                          "droot_fetch no-op via ansible")}
    for name, run in noop.items():
        if run["result"].get("changed") or run["result"].get("downloaded"):
            raise SystemExit("droot_fetch's re-run changed something: %s" % run["result"])
        log("%s fetch %-13s %6.2f s" % (label, name, run["seconds"]))
    tree = rounds[0]["zstd_fresh"]["result"].get("stats", {})
    runs_dir.remove()
    return {"rounds": rounds, "noop": noop, "tree": tree}


def profile_section(bench, label, image):
    """py-spy of one more run of droot_export and of droot_fetch's variants: where the engine's time goes."""
    import profiles  # pylint: disable=import-outside-toplevel
    out = {}
    top = os.path.join(bench.trees, "profile-%s" % label)
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)

    def fetch_args(key, dest):
        return bench_fetch.module_args(bench.endpoint, bench.url(label, key), os.path.join(top, dest))

    jobs = [
        ("export_zstd", "droot_export", bench_export.module_args(
            image, bench.endpoint, bench.url(label, "profile.tar.zst"), {"compression": "zstd"})),
        ("fetch_zstd_fresh", "droot_fetch", fetch_args("droot.tar.zst", "a")),
        ("fetch_gzip_fresh", "droot_fetch", fetch_args("seed.tar.gz", "b")),
        # Over the tree of the gzip fetch (another release id): unpack, switch, delete the old tree.
        ("fetch_zstd_existing", "droot_fetch", fetch_args("droot.tar.zst", "b")),
    ]
    for name, module, args in jobs:
        raw = os.path.join(top, name + ".txt")
        work_s = bench.profile(module, args, raw)
        out[name] = dict(profiles.summarize(raw), work_s=work_s)
        shares = ", ".join("%s %.0f%%" % (key, value * 100) for key, value in out[name]["categories"].items())
        log("%s profile %s: %s" % (label, name, shares))
    shutil.rmtree(top, ignore_errors=True)
    return out


def image_facts(image):
    attrs = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                      check=True).stdout)[0]
    return {"image": image, "image_id": attrs["Id"], "docker_size": attrs["Size"]}


def machine_facts():
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    with open("/proc/meminfo", encoding="utf-8") as handle:
        memory_kib = int(handle.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": models[0] if models else platform.machine(),
            "memory_gib": round(memory_kib / 2 ** 20, 1), "kernel": platform.release(),
            "python": platform.python_version()}


def _filesystem_of(path):
    """``TYPE on DEVICE`` of the mount that holds ``path``."""
    best, found = "", "?"
    path = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            device, mountpoint, kind = line.split()[:3]
            if (path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")) and len(mountpoint) >= len(best):
                best, found = mountpoint, "%s on %s" % (kind, device)
    return found


class CpuLoad:
    """How busy the machine was: all CPUs, and this benchmark's own processes (moto_server once it
    has stopped), per section (since the previous snapshot) and in all."""

    def __init__(self):
        self.start = self.last = self._now()

    @staticmethod
    def _now():
        children, own = os.times()[2:4], os.times()[0:2]
        return measure.busy_cpu_seconds(), time.monotonic(), sum(children) + sum(own)

    @staticmethod
    def _between(before, after):
        elapsed = after[1] - before[1]
        return {"elapsed_s": round(elapsed, 1), "busy_cpus": round((after[0] - before[0]) / elapsed, 2),
                "benchmark_cpus": round((after[2] - before[2]) / elapsed, 2),
                "loadavg": [round(value, 2) for value in os.getloadavg()]}

    def snapshot(self):
        now = self._now()
        section, self.last = self._between(self.last, now), now
        return section

    def total(self):
        return self._between(self.start, self._now())


SECTIONS = ("export", "fetch", "profile", "deploy")


def _sections(text):
    """The sections asked for, with what they need: fetch and profile read export's archives."""
    wanted = set(name.strip() for name in text.split(",") if name.strip())
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError("unknown section %s (choose from %s)"
                                         % (", ".join(sorted(unknown)), ", ".join(SECTIONS)))
    if wanted & {"fetch", "profile"}:
        wanted.add("export")
    return [name for name in SECTIONS if name in wanted]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each pair on the app image (default 5)")
    parser.add_argument("--repeat-large", type=int, default=3, help="rounds on the large image (default 3)")
    parser.add_argument("--ansible-repeat", type=int, default=1,
                        help="rounds that also run the modules through `ansible` (default 1)")
    parser.add_argument("--images", default="app,large", help="which images: app, large (default both)")
    parser.add_argument("--large-mb", type=int, default=800,
                        help="data added to the app image for the large one (default 800: about 1 GB)")
    parser.add_argument("--hosts", help="host counts for the deploy role (default 1,2,4,8); empty: skip it")
    parser.add_argument("--deploy-repeat", type=int, default=1, help="first deploys and no-ops per host count")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help="which sections, comma-separated: export, fetch, profile, deploy (default all; fetch "
                             "and profile run export too, they read its archives); results in WORKDIR/results "
                             "unless all run")
    parser.add_argument("--quick", action="store_true",
                        help="development run: app image only, 1 round, hosts 1,2, results in WORKDIR/results")
    parser.add_argument("--port", type=int, default=5290, help="moto_server's port on 127.0.0.1 (default 5290)")
    parser.add_argument("--workdir", default="/var/tmp/droot-bench",
                        help="the base root's cache, logs, the hosts' key and the trees' file system")
    parser.add_argument("--results", help="where results go (default bench/results)")
    parser.add_argument("--trees-on", metavar="DIR",
                        help="put the fetched trees in DIR (default: a journaled ext4 of its own, see TreesFilesystem)")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.repeat_large, args.images = 1, 1, "app"
        args.hosts = "1,2" if args.hosts is None else args.hosts
    args.hosts = "1,2,4,8" if args.hosts is None else args.hosts
    # bench/results (and the README's tables) hold complete runs only (--no-profile aside).
    partial = args.quick or args.sections != list(SECTIONS)
    if args.no_profile and "profile" in args.sections:
        args.sections.remove("profile")
    args.results = args.results or (os.path.join(args.workdir, "results") if partial else RESULTS)
    return args


def main():
    args = parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the pipelines restore numeric owners and device nodes, the hosts mount")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        raise SystemExit("no Docker daemon answers: `make setup` starts one")
    ensure_requirements()
    os.makedirs(args.workdir, exist_ok=True)
    collections = bench_fetch.collection_path(args.workdir)
    load = CpuLoad()
    started = datetime.datetime.now(datetime.timezone.utc)
    wanted = [name.strip() for name in args.images.split(",") if name.strip()]
    if "export" not in args.sections:
        wanted = []   # the deploy section builds the app image itself
    image_names = {}
    if "app" in wanted:
        image_names["app"] = images.ensure_app(args.workdir, log)
    if "large" in wanted:
        image_names["large"] = images.ensure_large(args.workdir, args.large_mb, log)
    results = {"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine_facts(),
               "settings": {"repeat": args.repeat, "repeat_large": args.repeat_large,
                            "ansible_repeat": args.ansible_repeat, "large_mb": args.large_mb, "hosts": args.hosts,
                            "sections": args.sections, "deploy_repeat": args.deploy_repeat},
               "images": {}, "load": {}}
    results["load"]["images built"] = load.snapshot()
    moto = bench_fetch.Moto(args.port, args.workdir)
    finished = False
    try:
        bench_export.make_bucket(moto.endpoint, BUCKET)
        bench = Bench(args, args.workdir, collections, moto)
        if "fetch" in args.sections or "profile" in args.sections:
            trees = TreesFilesystem(args.workdir, 40) if args.trees_on is None else contextlib.nullcontext(args.trees_on)
        else:
            trees = contextlib.nullcontext(None)
        with trees as bench.trees:
            if bench.trees is not None:
                results["machine"]["trees_on"] = _filesystem_of(bench.trees)
            for label, image in image_names.items():
                entry = results["images"][label] = image_facts(image)
                entry["export"] = export_section(bench, label, image)
                results["load"]["%s export" % label] = load.snapshot()
                if "fetch" in args.sections:
                    entry["fetch"] = fetch_section(bench, label)
                    results["load"]["%s fetch" % label] = load.snapshot()
                if "profile" in args.sections:
                    entry["profile"] = profile_section(bench, label, image)
        counts = [int(value) for value in args.hosts.split(",") if value.strip()]
        if counts and "deploy" in args.sections:
            import deploy  # pylint: disable=import-outside-toplevel
            results["deploy"] = deploy.run(bench, image_names.get("app") or images.ensure_app(args.workdir, log),
                                           counts, args.deploy_repeat, log)
            results["load"]["deploy"] = load.snapshot()
        finished = True
    finally:
        moto.stop()
        results["load"]["total"] = load.total()
        results["duration_s"] = round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds())
        # An interrupted run's measurements stay out of the results directory, but are kept.
        directory = args.results if finished else os.path.join(args.workdir, "interrupted")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "results.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, sort_keys=True)
    import report  # pylint: disable=import-outside-toplevel
    text = report.write(results, args.results)
    if os.path.realpath(args.results) == os.path.realpath(RESULTS):
        report.update_readme(os.path.join(REPO, "README.md"), text)
    print(text)
    log("results in %s" % args.results)


if __name__ == "__main__":
    main()
