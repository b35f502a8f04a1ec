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
# The deploy role against 0.1.0's (issue: fewer tasks per host): new / 0.1.0 at most this.
DEPLOY_NOOP_TARGET = 0.5        # wall time of the no-op deploy on 1 host
DEPLOY_FIRST_TARGET = 0.7       # wall time of the first deploy on 1 host
DEPLOY_CPU_TARGET = 0.5         # controller CPU seconds per host per deploy
DEPLOY_TASKS_TARGET = 25        # tasks executed per host, a deploy without hooks (new role)
DEPLOY_ROLES = ("new", "0.1.0")


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
        fetch = image.get("fetch")
        if fetch is None:
            continue
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
        for module, section, first in (("droot_export", image.get("export"), "zstd"),
                                       ("droot_fetch", image.get("fetch"), "zstd_fresh")):
            if section is None:
                continue
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


def _deploy_runs(entry, role, kind):
    """The runs of one role and kind (first, noop) at one host count; a results.json from before the
    roles were compared has the checkout's role only."""
    if "roles" in entry:
        return entry["roles"].get(role, {}).get(kind, [])
    return entry.get(kind, []) if role == "new" else []


def _deploy_roles(results):
    """The roles measured, in table order."""
    counts = (results.get("deploy") or {}).get("counts", [])
    return [role for role in DEPLOY_ROLES if any(_deploy_runs(entry, role, "first") for entry in counts)]


def _ratio(mine, theirs):
    return mine / theirs if mine is not None and theirs else None


def _per_host(runs, hosts):
    """The median controller CPU seconds per host."""
    return _median([run["cpu_s"] / hosts if run.get("cpu_s") is not None else None for run in runs])


def deploy_rows(results):
    """One row per host count and role."""
    deploy = results.get("deploy") or {}
    out = []
    for entry in deploy.get("counts", []):
        for role in _deploy_roles(results):
            first_runs, noop_runs = _deploy_runs(entry, role, "first"), _deploy_runs(entry, role, "noop")
            if not first_runs:
                continue
            first = _median([run["seconds"] for run in first_runs])
            noop = _median([run["seconds"] for run in noop_runs])
            hosts = entry["hosts"]
            out.append({"hosts": hosts, "batches": entry["batches"], "role": role, "first_s": first, "noop_s": noop,
                        "first_per_batch_s": first / entry["batches"] if first else None,
                        "controller_cpu_s": _median([run.get("cpu_s") for run in first_runs]),
                        "cpu_per_host_first": _per_host(first_runs, hosts), "cpu_per_host_noop": _per_host(noop_runs, hosts),
                        "hosts_cpu_s": _median([run.get("hosts_cpu_s") for run in first_runs]),
                        "busy_cpus": _median([run.get("busy_cpus") for run in first_runs]),
                        "tasks_first": _median([run.get("executed_per_host_max") for run in first_runs]),
                        "tasks_noop": _median([run.get("executed_per_host_max") for run in noop_runs]),
                        "skipped_first": _median([run.get("skipped_per_host_max") for run in first_runs]),
                        "skipped_noop": _median([run.get("skipped_per_host_max") for run in noop_runs]),
                        "peak_mb": _peak_mb(first_runs + noop_runs)})
    return out


def deploy_ratios(results):
    """new / 0.1.0 per host count: each attempt's runs of the two roles paired, then the median."""
    out = []
    if _deploy_roles(results) != list(DEPLOY_ROLES):
        return out
    for entry in results["deploy"]["counts"]:
        row = {"hosts": entry["hosts"]}
        for kind in ("first", "noop"):
            pairs = list(zip(_deploy_runs(entry, "new", kind), _deploy_runs(entry, "0.1.0", kind)))
            row[kind] = _median([_ratio(new["seconds"], old["seconds"]) for new, old in pairs])
            row["cpu_" + kind] = _median([_ratio(new.get("cpu_s"), old.get("cpu_s")) for new, old in pairs])
        # Per host per deploy, both deploys counted alike: (first + no-op) of one over the other's.
        pairs = zip(zip(_deploy_runs(entry, "new", "first"), _deploy_runs(entry, "new", "noop")),
                    zip(_deploy_runs(entry, "0.1.0", "first"), _deploy_runs(entry, "0.1.0", "noop")))
        row["cpu_both"] = _median([_ratio(new[0]["cpu_s"] + new[1]["cpu_s"], old[0]["cpu_s"] + old[1]["cpu_s"])
                                   for new, old in pairs
                                   if None not in (new[0].get("cpu_s"), new[1].get("cpu_s"), old[0].get("cpu_s"),
                                                   old[1].get("cpu_s"))])
        out.append(row)
    return out


def deploy_targets(results):
    """(target, measured, met) of the deploy role against 0.1.0's."""
    out = []
    rows_by = dict(((row["hosts"], row["role"]), row) for row in deploy_rows(results))
    ratios = dict((row["hosts"], row) for row in deploy_ratios(results))
    if 1 in ratios:
        for kind, name, target in (("noop", "no-op deploy", DEPLOY_NOOP_TARGET),
                                   ("first", "first deploy", DEPLOY_FIRST_TARGET)):
            ratio = ratios[1][kind]
            if ratio is None:
                continue
            out.append(("deploy role, %s on 1 host: new / 0.1.0 <= %.1f" % (name, target),
                        "%.2f (%.1f s / %.1f s)" % (ratio, rows_by[(1, "new")][kind + "_s"],
                                                    rows_by[(1, "0.1.0")][kind + "_s"]),
                        ratio <= target))
    if ratios:
        hosts = max(ratios)
        ratio = ratios[hosts]["cpu_both"]
        if ratio is not None:
            new, old = rows_by[(hosts, "new")], rows_by[(hosts, "0.1.0")]
            out.append(("deploy role, controller CPU seconds per host per deploy: new / 0.1.0 <= %.1f (%d hosts, "
                        "first and no-op deploy together)" % (DEPLOY_CPU_TARGET, hosts),
                        "%.2f (first %s, no-op %s; per host: first %.1f s / %.1f s, no-op %.1f s / %.1f s)"
                        % (ratio, _fmt(ratios[hosts]["cpu_first"]), _fmt(ratios[hosts]["cpu_noop"]),
                           new["cpu_per_host_first"], old["cpu_per_host_first"], new["cpu_per_host_noop"],
                           old["cpu_per_host_noop"]),
                        ratio <= DEPLOY_CPU_TARGET))
    counted = [row for row in deploy_rows(results) if row["role"] == "new" and row["tasks_first"] is not None]
    if counted:
        most = max(max(row["tasks_first"], row["tasks_noop"] or 0) for row in counted)
        old = [row for row in deploy_rows(results) if row["role"] == "0.1.0" and row["tasks_first"] is not None]
        out.append(("deploy role, tasks executed per host, a deploy without hooks <= %d (new role; the most on any "
                    "host, first or no-op, any host count)" % DEPLOY_TASKS_TARGET,
                    "%d (0.1.0: %s)" % (most, max(max(row["tasks_first"], row["tasks_noop"] or 0) for row in old)
                                        if old else "-"),
                    most <= DEPLOY_TASKS_TARGET))
    return out


def targets(results):
    """(target, measured, met) for each acceptance line of issue 6, and of the deploy role against
    0.1.0's, that this run measured."""
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
    by_hosts = dict((row["hosts"], row) for row in deploy if row["role"] == "new")
    if 2 in by_hosts and 8 in by_hosts and by_hosts[2]["first_s"]:
        growth = by_hosts[8]["first_s"] / by_hosts[2]["first_s"]
        out.append(("deploy time grows with batches, not hosts: 8 hosts (2 batches) / 2 hosts (2 batches) < 2",
                    "%.2f (first deploy; no-op %.2f)" % (growth, by_hosts[8]["noop_s"] / by_hosts[2]["noop_s"]),
                    growth < 2.0))
    out.extend(deploy_targets(results))
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


def _header(results):
    machine = results["machine"]
    load = results.get("load", {}).get("total", {})
    settings = results["settings"]
    sections = settings.get("sections")
    text = "Run of %s: %d CPUs (%s), %.0f GiB, kernel %s" % (
        results["started"], machine["cpus"], machine["cpu_model"], machine["memory_gib"], machine["kernel"])
    if sections is not None and sorted(sections) != sorted(["export", "fetch", "profile", "deploy"]):
        text += "; sections %s only" % ", ".join(sections)
    if results["images"]:
        text += ", fetched trees on %s; rounds per pair: %d on the app image, %d on the large one (%d through " \
                "`ansible`)" % (machine.get("trees_on", "-"), settings["repeat"],
                                settings.get("repeat_large", settings["repeat"]), settings["ansible_repeat"])
    if results.get("deploy"):
        text += "; deploy runs per host count and role: %d" % settings.get("deploy_repeat", 1)
    text += ("; %d s in all. Machine load during the run: %s CPUs busy on average, %s of them this benchmark's own "
             "processes and moto_server (not counting dockerd and the hosts' containers); load average at the end %s."
             % (results["duration_s"], load.get("busy_cpus", "?"), load.get("benchmark_cpus", "?"),
                " / ".join(str(value) for value in load.get("loadavg", []))))
    return text


def _image_tables(results):
    lines = []
    sizes = []
    for label, image in results["images"].items():
        tree = (image.get("fetch") or {}).get("tree", {})
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
    return lines


def _tasks(executed, skipped):
    return "-" if executed is None else "%.0f (%s)" % (executed, _fmt(skipped, "%.0f"))


def _deploy_tables(results):
    lines = ["", "| hosts | batches (serial 50%) | role | first deploy s | per batch s | no-op deploy s | controller "
             "CPU s per host: first / no-op | hosts' CPU s, first deploy | tasks per host, executed (skipped): first "
             "/ no-op | machine CPUs busy | controller peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in deploy_rows(results):
        lines.append("| %d | %d | %s | %s | %s | %s | %s / %s | %s | %s / %s | %s of %d | %s |" % (
            row["hosts"], row["batches"], row["role"], _fmt(row["first_s"], "%.1f"),
            _fmt(row["first_per_batch_s"], "%.1f"), _fmt(row["noop_s"], "%.1f"), _fmt(row["cpu_per_host_first"]),
            _fmt(row["cpu_per_host_noop"]), _fmt(row["hosts_cpu_s"], "%.1f"),
            _tasks(row["tasks_first"], row["skipped_first"]), _tasks(row["tasks_noop"], row["skipped_noop"]),
            _fmt(row["busy_cpus"], "%.2f"), results["machine"]["cpus"], _fmt(row["peak_mb"], "%.0f")))
    ratios = deploy_ratios(results)
    if ratios:
        lines += ["", "| hosts | new / 0.1.0: first deploy s | no-op deploy s | controller CPU s per host: first / "
                  "no-op / both deploys |", "|---|---|---|---|"]
        for row in ratios:
            lines.append("| %d | %s | %s | %s / %s / %s |" % (
                row["hosts"], _fmt(row["first"]), _fmt(row["noop"]), _fmt(row["cpu_first"]), _fmt(row["cpu_noop"]),
                _fmt(row["cpu_both"])))
    return lines


def markdown(results):
    lines = [_header(results)]
    if results["images"]:
        lines.append("")
        lines.extend(_image_tables(results))
    if deploy_rows(results):
        lines.extend(_deploy_tables(results))
    lines.extend(profile_lines(results))
    lines.append("")
    lines.append("| target (issue 6; the deploy role: new / 0.1.0, tasks per host) | measured | |")
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
        styles = {"new": ("-", "this checkout"), "0.1.0": ("--", "0.1.0")}
        for role in _deploy_roles(results):
            selected = [row for row in deploy if row["role"] == role]
            hosts = [row["hosts"] for row in selected]
            linestyle, name = styles[role]
            axis.plot(hosts, [row["first_s"] for row in selected], marker="o", color="tab:blue", linestyle=linestyle,
                      label="first deploy, %s" % name)
            axis.plot(hosts, [row["noop_s"] for row in selected], marker="s", color="tab:orange",
                      linestyle=linestyle, label="no-op deploy, %s" % name)
        hosts = sorted(set(row["hosts"] for row in deploy))
        for row in deploy:
            if row["role"] == _deploy_roles(results)[-1]:
                axis.annotate("%d batch%s" % (row["batches"], "es" if row["batches"] > 1 else ""),
                              (row["hosts"], row["first_s"]), textcoords="offset points", xytext=(0, 7),
                              ha="center", fontsize=8)
        axis.set_xscale("log", base=2)
        axis.set_xticks(hosts)
        axis.set_xticklabels([str(value) for value in hosts])
        axis.set_xlabel("hosts (serial 50%)")
        axis.set_ylabel("wall time of ansible-playbook (s)")
        axis.set_ylim(0, max(row["first_s"] for row in deploy) * 1.15)
        axis.set_title("droot.core.deploy against 0.1.0's: time against host count")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
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
