#!/usr/bin/env python3
"""benches/report.py WORKDIR OUTDIR RUNS LOAD_BEFORE LOAD_AFTER REEVEC: turn hyperfine JSON and an
strace log from benches/run.sh into OUTDIR/RESULTS.md and OUTDIR/start.svg (no dependencies)."""
import json, os, platform, re, statistics, subprocess, sys, time

work, out, runs, load0, load1, reevec = sys.argv[1:7]


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def load(name):
    rows = []
    for r in json.load(open(os.path.join(work, name)))["results"]:
        t = [x * 1000 for x in r["times"]]
        rows.append((r["command"], pct(t, 50), pct(t, 90), pct(t, 99), statistics.pstdev(t), len(t)))
    return rows


def table(rows, ref):
    base = {n: p50 for n, p50, *_ in rows}[ref]
    lines = ["| command | p50 ms | p90 ms | p99 ms | stddev ms | runs | p50 / " + ref + " |",
             "|---|---|---|---|---|---|---|"]
    for n, a, b, c, d, k in rows:
        lines.append(f"| {n} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} | {k} | {a / base:.2f}x |")
    return lines


def svg(rows, path):
    w, bar, gap, left = 760, 26, 14, 250
    h = 40 + len(rows) * (bar + gap) + 30
    top = max(c for _, _, _, c, _, _ in rows) * 1.1
    sx = lambda v: left + v / top * (w - left - 20)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
         f'<text x="10" y="20" font-size="14">Start latency, ms (bar = p50, whisker = p90..p99)</text>']
    for i, (n, a, b, c, _, _) in enumerate(rows):
        y = 35 + i * (bar + gap)
        col = "#2b7bb9" if n.startswith("reevec") else ("#999" if n.startswith("floor") else "#d9822b")
        s.append(f'<text x="10" y="{y + bar * 0.7}">{n}</text>')
        s.append(f'<rect x="{left}" y="{y}" width="{sx(a) - left:.1f}" height="{bar}" fill="{col}"/>')
        s.append(f'<line x1="{sx(b):.1f}" x2="{sx(c):.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" stroke="black"/>')
        s.append(f'<line x1="{sx(c):.1f}" x2="{sx(c):.1f}" y1="{y + 5}" y2="{y + bar - 5}" stroke="black"/>')
        s.append(f'<text x="{sx(c) + 4:.1f}" y="{y + bar * 0.7}">{a:.2f}</text>')
    ya = h - 20
    s.append(f'<line x1="{left}" x2="{w - 20}" y1="{ya}" y2="{ya}" stroke="black"/>')
    step = max(1, round(top / 6))
    v = 0
    while v <= top:
        s.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{ya}" y2="{ya + 4}" stroke="black"/>')
        s.append(f'<text x="{sx(v) - 4:.1f}" y="{ya + 16}">{v}</text>')
        v += step
    s.append("</svg>")
    open(path, "w").write("\n".join(s) + "\n")


def strace_breakdown(path):
    """Offsets (ms from the first syscall) of the steps of one `reevec run` under strace -f -tt -T."""
    marks = [("execve(\"" + reevec, "reevec exec'd"),
             ("memfd_create", "memfd for the sealed re-exec"),
             ("execveat", "re-exec from the sealed memfd"),
             ("clone3", "clone3 of the container init"),
             ("pivot_root", "pivot_root"),
             ("seccomp(", "seccomp filter installed"),
             ("execve(\"/bin/true", "exec of /bin/true"),
             ("+++ exited", "a process exited")]
    lines = open(path).read().splitlines()
    t = lambda l: sum(float(x) * m for x, m in zip(l.split()[1].split(":"), (3600, 60, 1)))
    if not lines:
        return ["(strace produced no output)"]
    t0 = t(lines[0])
    outl = ["| ms since first syscall | pid | step |", "|---|---|---|"]
    seen = set()
    for l in lines:
        for key, label in marks:
            if key in l and (key, l.split()[0]) not in seen:
                seen.add((key, l.split()[0]))
                outl.append(f"| {(t(l) - t0) * 1000:.2f} | {l.split()[0]} | {label} |")
    per = {}
    for l in lines:
        m = re.match(r"\S+ \S+ (\w+)\(.*<([\d.]+)>$", l)
        if m:
            per[m.group(1)] = per.get(m.group(1), 0) + float(m.group(2)) * 1000
    outl += ["", f"Total {(t(lines[-1]) - t0) * 1000:.2f} ms under strace (strace inflates every syscall). "
             "Syscalls with the most time inside the kernel:", "", "| syscall | ms (sum) |", "|---|---|"]
    for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:10]:
        outl.append(f"| {k} | {v:.2f} |")
    return outl


start = load("start.json")
csd = load("csd.json")
svg(start + csd, os.path.join(out, "start.svg"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rev = subprocess.getoutput("git -C " + os.path.dirname(os.path.abspath(__file__)) + " log -1 --format=%h")
md = ["# reeve benchmark results", "",
      f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bash benches/run.sh` "
      f"(commit {rev} + working tree, {runs} runs per figure).", "",
      f"Machine: {cpu}, {os.cpu_count()} cores, kernel {platform.release()}, "
      f"load average {load0} before / {load1} after (other jobs share the cores: compare ratios within "
      "one run, not absolute numbers across runs).", "",
      "## Start latency on the host (same /bin/true busybox bundle, one session)", "",
      "No cgroups on the host (crun in `unshare -m` with a ro tmpfs on /sys/fs/cgroup, reevec with no",
      "cgroup in the bundle). floor = benches/floor/floor.c: clone with the same namespaces + pivot_root",
      "+ exec, no runtime. `run` is measured with hyperfine -N (no shell).", ""]
md += table(start, "reevec run")
md += ["", "create+start+delete (three runtime invocations, through a shell; hyperfine subtracts the shell):", ""]
md += table(csd, "reevec create+start+delete")
md += ["", "## Teardown of a running sandbox (`delete --force`: SIGKILL, wait, remove state; hyperfine -N)", ""]
md += table(load("td.json"), "reevec delete -f (running)")
md += ["", "![start latency](start.svg)", "",
       "## Where reevec's start time goes (one `reevec run` under `strace -f -tt -T`)", ""]
md += strace_breakdown(os.path.join(work, "strace.txt"))
md += ["", "## Not measured yet (issue 7)", "",
       "runc and cgroup-charged figures (VM), density of reeved with 100/500/1000 tenants, seccomp install",
       "and per-syscall cost, kill+delete in the VM with cgroups are not in this run yet."]
open(os.path.join(out, "RESULTS.md"), "w").write("\n".join(md) + "\n")
