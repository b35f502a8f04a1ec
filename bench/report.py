# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""results.json -> results.md (tables, targets) and the PNG plots.

    python bench/report.py [RESULTS_DIR]     # remake the table and plots from a results.json

Ratios are droot.core / seed, taken round by round (each round runs both, one after the other)
and then the median, so that a load change between rounds hits both sides of a ratio alike.
"""

import json
import os
import statistics
import sys

MB = 1e6
EXPORT_TARGET = 0.3
FETCH_TARGETS = {"zstd": 0.5, "gzip": 1.0}
NOOP_SPEEDUP = 5.0
RSS_TARGET_MB = 200.0


def _median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def _runs(section, name):
    return [rounds[name] for rounds in section["rounds"] if name in rounds]


def _time(run, level):
    if run is None:
        return None
    return run.get("work_s") if level == "engine" else run["seconds"]


def _pair(section, seed, ours, level):
    """Medians of both sides and the median of the per-round ratios."""
    pairs = [(rounds[seed]["seconds"], _time(rounds.get(ours), level))
             for rounds in section["rounds"] if seed in rounds and ours in rounds]
    ratios = [mine / theirs for theirs, mine in pairs if mine is not None]
    return _median([mine for _theirs, mine in pairs]), _median(ratios)


def _peak_mb(runs):
    values = [run["peak_mib"] * 2 ** 20 / MB for run in runs]
    return max(values) if values else None


def _fmt(value, spec="%.2f", empty="-"):
    return empty if value is None else spec % value


def _name(row):
    return "%s, %s" % (row["operation"], row["variant"]) if row["variant"] else row["operation"]


def _mb(size):
    return _fmt(size / MB if size is not None else None, "%.0f")


def rows(results):
    """One row per pair and image: the numbers of the main table."""
    out = []
    for label, image in results["images"].items():
        export = image["export"]
        for compression in ("zstd", "gzip"):
            out.append(_row(label, image, "export + ship", compression, export, "seed", compression,
                            stored=(export["stored_bytes"]["seed"], export["stored_bytes"][compression]),
                            target=EXPORT_TARGET if compression == "zstd" else None))
        out.append(_row(label, image, "reference: `docker export` alone, into /dev/null", "", export, "seed",
                        "docker_export", stored=(export["stored_bytes"]["seed"], None), target=None))
        out.append(_row(label, image, "reference: the seed's pipeline with `zstd -3 -T0` for gzip", "", export,
                        "seed", "zstd_pipeline", stored=(export["stored_bytes"]["seed"], None), target=None))
        fetch = image["fetch"]
        tree_bytes = fetch["tree"].get("bytes")
        for compression in ("zstd", "gzip"):
            for state in ("fresh", "existing"):
                ours = "%s_%s" % (compression, state)
                archive = export["stored_bytes"]["zstd" if compression == "zstd" else "seed"]
                out.append(_row(label, image, "fetch + activate, %s dest" % state,
                                compression if compression == "zstd" else "gzip (seed's archive)",
                                fetch, "seed_" + state, ours, stored=(tree_bytes, tree_bytes),
                                target=FETCH_TARGETS[compression], archive=archive))
        out.append(_row(label, image, "reference: the seed's pipeline with `tar --zstd` on droot_export's archive, "
                        "fresh dest", "", fetch, "seed_fresh", "tar_zstd_fresh",
                        stored=(tree_bytes, tree_bytes), target=None, archive=export["stored_bytes"]["zstd"]))
    return out


def _row(label, image, operation, variant, section, seed, ours, stored, target, archive=None):
    seed_runs = _runs(section, seed)
    engine, engine_ratio = _pair(section, seed, ours, "engine")
    process, process_ratio = _pair(section, seed, ours, "process")
    ansible, ansible_ratio = _pair(section, seed, ours + "_ansible", "process")
    return {
        "image": label, "image_mb": image["docker_size"] / MB, "operation": operation, "variant": variant,
        "seed_s": _median([run["seconds"] for run in seed_runs]),
        "engine_s": engine, "process_s": process, "ansible_s": ansible,
        "ratio_engine": engine_ratio, "ratio_process": process_ratio, "ratio_ansible": ansible_ratio,
        "target": target,
        "peak_seed_mb": _peak_mb(seed_runs), "peak_droot_mb": _peak_mb(_runs(section, ours)),
        "peak_ansible_mb": _peak_mb(_runs(section, ours + "_ansible")),
        "stored_seed": stored[0], "stored_droot": stored[1], "archive": archive,
        "rounds": len(seed_runs),
    }


def noop_rows(results):
    out = []
    for label, image in results["images"].items():
        for module, section, first in (("droot_export", image["export"], "zstd"),
                                       ("droot_fetch", image["fetch"], "zstd_fresh")):
            first_runs = _runs(section, first)
            row = {"image": label, "module": module,
                   "first_engine": _median([run["work_s"] for run in first_runs]),
                   "first_process": _median([run["seconds"] for run in first_runs]),
                   "first_ansible": _median([run["seconds"] for run in _runs(section, first + "_ansible")]),
                   "noop_engine": section["noop"]["noop"]["work_s"],
                   "noop_process": section["noop"]["noop"]["seconds"],
                   "noop_ansible": section["noop"]["noop_ansible"]["seconds"]}
            for level in ("engine", "process", "ansible"):
                first_s, noop_s = row["first_" + level], row["noop_" + level]
                row["speedup_" + level] = first_s / noop_s if first_s and noop_s else None
            out.append(row)
    return out


def deploy_rows(results):
    deploy = results.get("deploy") or {}
    out = []
    for entry in deploy.get("counts", []):
        first = _median([run["seconds"] for run in entry["first"]])
        noop = _median([run["seconds"] for run in entry["noop"]])
        out.append({"hosts": entry["hosts"], "batches": entry["batches"], "first_s": first, "noop_s": noop,
                    "first_per_batch_s": first / entry["batches"] if first else None,
                    "controller_cpu_s": _median([run.get("cpu_s") for run in entry["first"]]),
                    "hosts_cpu_s": _median([run.get("hosts_cpu_s") for run in entry["first"]]),
                    "busy_cpus": _median([run.get("busy_cpus") for run in entry["first"]]),
                    "peak_mb": _peak_mb(entry["first"] + entry["noop"])})
    return out


def targets(results):
    """(target, measured, met) for each acceptance line of issue 6 that this run measured."""
    out = []
    main = rows(results)
    for row in main:
        if row["target"] is None or row["ratio_engine"] is None:
            continue
        out.append(("%s %s: ratio <= %.1f" % (row["image"], _name(row), row["target"]),
                    "%.2f (module process %s, via ansible %s)" % (row["ratio_engine"], _fmt(row["ratio_process"]),
                                                                  _fmt(row["ratio_ansible"])),
                    row["ratio_engine"] <= row["target"]))
    for row in noop_rows(results):
        out.append(("%s %s no-op re-run >= %.0fx faster than the first run"
                    % (row["image"], row["module"], NOOP_SPEEDUP),
                    "%.0fx (module process %s, via ansible %s)" % (
                        row["speedup_engine"], _fmt(row["speedup_process"], "%.1fx"),
                        _fmt(row["speedup_ansible"], "%.1fx")),
                    row["speedup_engine"] >= NOOP_SPEEDUP))
    if "large" in results["images"]:
        large = [row for row in main if row["image"] == "large" and not row["operation"].startswith("reference")]
        peak = max(row["peak_droot_mb"] for row in large if row["peak_droot_mb"] is not None)
        out.append(("large image: peak RSS of the module's process tree < %.0f MB" % RSS_TARGET_MB,
                    "%.0f MB (highest of export and fetch)" % peak, peak < RSS_TARGET_MB))
    deploy = deploy_rows(results)
    by_hosts = dict((row["hosts"], row) for row in deploy)
    if 2 in by_hosts and 8 in by_hosts and by_hosts[2]["first_s"]:
        growth = by_hosts[8]["first_s"] / by_hosts[2]["first_s"]
        out.append(("deploy time grows with batches, not hosts: 8 hosts (2 batches) / 2 hosts (2 batches) < 2",
                    "%.2f (first deploy; no-op %.2f)" % (growth, by_hosts[8]["noop_s"] / by_hosts[2]["noop_s"]),
                    growth < 2.0))
    return out


PROFILE_RUNS = {"export_zstd": "droot_export zstd", "fetch_zstd_fresh": "droot_fetch zstd, fresh dest",
                "fetch_gzip_fresh": "droot_fetch gzip, fresh dest", "fetch_zstd_existing": "droot_fetch zstd, existing dest"}


def profile_lines(results):
    """Where each engine's time went (py-spy, one more run each): leaf functions per thread."""
    lines = []
    for label, image in results["images"].items():
        profiles = image.get("profile") or {}
        for name in sorted(profiles, key=list(PROFILE_RUNS).index):
            profile = profiles[name]
            if not lines:
                lines += ["", "| image | run (py-spy, one more run) | engine s | thread: leaf functions, share of the "
                          "thread's samples (waiting included) |", "|---|---|---|---|"]
            threads = []
            for thread, entry in sorted(profile["threads"].items(), key=lambda item: not item[0].startswith("Main")):
                top = ", ".join("%s %.0f%%" % (function, share * 100) for function, share in entry["functions"][:5])
                threads.append("**%s**: %s" % (thread.split(" (")[0], top))
            lines.append("| %s | %s | %.2f | %s |"
                         % (label, PROFILE_RUNS.get(name, name), profile["work_s"], "<br>".join(threads)))
    return lines


def markdown(results):
    lines = []
    machine = results["machine"]
    load = results.get("load", {}).get("total", {})
    settings = results["settings"]
    lines.append("Run of %s: %d CPUs (%s), %.0f GiB, kernel %s, fetched trees on %s; rounds per pair: %d on the app "
                 "image, %d on the large one (%d through `ansible`); %d s in all. Machine load during the run: %s "
                 "CPUs busy on average, %s of them this benchmark's own processes and moto_server (not counting dockerd "
                 "and the hosts' containers); load average at the end %s."
                 % (results["started"], machine["cpus"], machine["cpu_model"], machine["memory_gib"], machine["kernel"],
                    machine.get("trees_on", "?"), settings["repeat"], settings.get("repeat_large", settings["repeat"]),
                    settings["ansible_repeat"], results["duration_s"], load.get("busy_cpus", "?"),
                    load.get("benchmark_cpus", "?"), " / ".join(str(value) for value in load.get("loadavg", []))))
    lines.append("")
    sizes = []
    for label, image in results["images"].items():
        tree = image["fetch"]["tree"]
        sizes.append("%s: `%s`, %.0f MB, %s files and directories"
                     % (label, image["image"], image["docker_size"] / MB, tree.get("members", "?")))
    lines.append("Images: " + "; ".join(sizes) + ".")
    lines.append("")
    lines.append("| image | pair (droot.core vs seed) | seed s | droot.core s: engine / module / ansible | "
                 "ratio: engine / module / ansible | target | peak MB: seed / module / ansible | stored MB: "
                 "seed / droot.core |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for row in rows(results):
        met = ""
        if row["target"] is not None and row["ratio_engine"] is not None:
            met = "<= %.1f %s" % (row["target"], "met" if row["ratio_engine"] <= row["target"] else "**missed**")
        if row["archive"] is not None:
            stored = "tree %s (archive %s)" % (_mb(row["stored_droot"]), _mb(row["archive"]))
        else:
            stored = "%s / %s" % (_mb(row["stored_seed"]), _mb(row["stored_droot"]))
        lines.append("| %s | %s | %s | %s / %s / %s | %s / %s / %s | %s | %s / %s / %s | %s |" % (
            row["image"], _name(row), _fmt(row["seed_s"]), _fmt(row["engine_s"]),
            _fmt(row["process_s"]), _fmt(row["ansible_s"]), _fmt(row["ratio_engine"]), _fmt(row["ratio_process"]),
            _fmt(row["ratio_ansible"]), met, _fmt(row["peak_seed_mb"], "%.0f"), _fmt(row["peak_droot_mb"], "%.0f"),
            _fmt(row["peak_ansible_mb"], "%.0f"), stored))
    lines.append("")
    lines.append("| image | module | first run s: engine / module / ansible | no-op s: engine / module / ansible | "
                 "no-op faster by: engine / module / ansible |")
    lines.append("|---|---|---|---|---|")
    for row in noop_rows(results):
        lines.append("| %s | %s | %s / %s / %s | %s / %s / %s | %s / %s / %s |" % (
            row["image"], row["module"], _fmt(row["first_engine"]), _fmt(row["first_process"]),
            _fmt(row["first_ansible"]), _fmt(row["noop_engine"], "%.3f"), _fmt(row["noop_process"]),
            _fmt(row["noop_ansible"]), _fmt(row["speedup_engine"], "%.0fx"), _fmt(row["speedup_process"], "%.1fx"),
            _fmt(row["speedup_ansible"], "%.1fx")))
    deploy = deploy_rows(results)
    if deploy:
        lines.append("")
        lines.append("| hosts | batches (serial 50%) | first deploy s | per batch s | no-op deploy s | first deploy "
                     "CPU s: controller / hosts | machine CPUs busy | controller peak MB |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for row in deploy:
            lines.append("| %d | %d | %s | %s | %s | %s / %s | %s of %d | %s |" % (
                row["hosts"], row["batches"], _fmt(row["first_s"], "%.1f"), _fmt(row["first_per_batch_s"], "%.1f"),
                _fmt(row["noop_s"], "%.1f"), _fmt(row["controller_cpu_s"], "%.1f"), _fmt(row["hosts_cpu_s"], "%.1f"),
                _fmt(row["busy_cpus"], "%.2f"), results["machine"]["cpus"], _fmt(row["peak_mb"], "%.0f")))
    lines.extend(profile_lines(results))
    lines.append("")
    lines.append("| target (issue 6) | measured | |")
    lines.append("|---|---|---|")
    for name, measured, met in targets(results):
        lines.append("| %s | %s | %s |" % (name, measured, "met" if met else "**missed**"))
    return "\n".join(lines) + "\n"


def plots(results, directory):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    written = []
    main = rows(results)
    if main:
        figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for axis, operation, title in ((axes[0], "export + ship", "export + ship"),
                                       (axes[1], "fetch + activate, fresh dest", "fetch + activate (fresh dest)")):
            selected = [row for row in main if row["operation"] == operation]
            series = [("seed pipeline (gzip)", "seed_s", None, "k", "o")]
            for variant, color in (("zstd", "tab:blue"), ("gzip", "tab:orange")):
                series.append(("droot.core %s, module" % variant.split()[0], "process_s", variant, color, "s"))
                series.append(("droot.core %s, engine" % variant.split()[0], "engine_s", variant, color, "^"))
            for name, key, variant, color, marker in series:
                points = sorted((row["image_mb"], row[key]) for row in selected
                                if (variant is None and "zstd" in row["variant"]) or
                                (variant is not None and row["variant"].startswith(variant)))
                if not points:
                    continue
                axis.plot([point[0] for point in points], [point[1] for point in points], marker=marker, color=color,
                          label=name,
                          linestyle="--" if key == "engine_s" else "-")
            axis.set_title(title)
            axis.set_xlabel("image size (MB, as Docker counts it)")
            axis.set_ylabel("median wall time (s)")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=8)
        figure.tight_layout()
        path = os.path.join(directory, "time_vs_size.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    deploy = deploy_rows(results)
    if deploy:
        figure, axis = plt.subplots(figsize=(6.5, 4.2))
        hosts = [row["hosts"] for row in deploy]
        axis.plot(hosts, [row["first_s"] for row in deploy], marker="o", label="first deploy")
        axis.plot(hosts, [row["noop_s"] for row in deploy], marker="s", label="no-op deploy")
        for row in deploy:
            axis.annotate("%d batch%s" % (row["batches"], "es" if row["batches"] > 1 else ""),
                          (row["hosts"], row["first_s"]), textcoords="offset points", xytext=(0, 7),
                          ha="center", fontsize=8)
        axis.set_xscale("log", base=2)
        axis.set_xticks(hosts)
        axis.set_xticklabels([str(value) for value in hosts])
        axis.set_xlabel("hosts (serial 50%)")
        axis.set_ylabel("wall time of ansible-playbook (s)")
        axis.set_ylim(0, max(row["first_s"] for row in deploy) * 1.15)
        axis.set_title("droot.core.deploy: time against host count")
        axis.grid(True, alpha=0.3)
        axis.legend()
        figure.tight_layout()
        path = os.path.join(directory, "time_vs_hosts.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


README_START = "<!-- bench/run.py: results start -->"
README_END = "<!-- bench/run.py: results end -->"


def update_readme(path, text):
    """Put ``text`` between the README's markers (its Benchmarks section), if it has them."""
    with open(path, encoding="utf-8") as handle:
        readme = handle.read()
    if README_START not in readme or README_END not in readme:
        return False
    head, rest = readme.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(head + README_START + "\n" + text + README_END + tail)
    os.rename(path + ".tmp", path)
    return True


def write(results, directory):
    """results.md and the plots in ``directory``; returns the markdown."""
    text = markdown(results)
    with open(os.path.join(directory, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    plots(results, directory)
    return text


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                   "results")
    with open(os.path.join(directory, "results.json"), encoding="utf-8") as handle:
        print(write(json.load(handle), directory))


if __name__ == "__main__":
    main()
