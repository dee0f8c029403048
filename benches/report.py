#!/usr/bin/env python3
"""benches/report.py WORK OUT RUNS VMRUNS LOAD_BEFORE LOAD_AFTER REEVEC QUICK: turn what
benches/run.sh left in WORK (hyperfine JSON, strace logs, density and memory samples, seccomp
bench output) into OUT/RESULTS.md and the charts OUT/start.svg, OUT/vm.svg, OUT/density.svg.
No dependencies. A part whose files are missing is reported as not run; never fails on a number."""
import json, os, platform, re, statistics, subprocess, sys, time

work, out, runs, vmruns, load0, load1, reevec, quick = sys.argv[1:9]
W = lambda n: os.path.join(work, n)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def load(name):
    """hyperfine JSON → [(command, p50, p90, p99, stddev, min, max, n)] in ms, or None."""
    try:
        res = json.load(open(W(name)))["results"]
    except (OSError, ValueError, KeyError):
        return None
    rows = []
    for r in res:
        t = [x * 1000 for x in r["times"]]
        rows.append((r["command"], pct(t, 50), pct(t, 90), pct(t, 99),
                     statistics.pstdev(t), min(t), max(t), len(t)))
    return rows


def p50(rows, prefix):
    for r in rows or []:
        if r[0].startswith(prefix):
            return r[1]
    return None


def table(rows, ref):
    base = p50(rows, ref)
    lines = [f"| command | p50 ms | p90 ms | p99 ms | stddev ms | min..max ms | runs | p50 / {ref} |",
             "|---|---|---|---|---|---|---|---|"]
    for n, a, b, c, d, lo, hi, k in rows:
        ratio = f"{a / base:.2f}x" if base else "-"
        lines.append(f"| {n} | {a:.2f} | {b:.2f} | {c:.2f} | {d:.2f} | {lo:.1f}..{hi:.1f} | {k} | {ratio} |")
    return lines


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"


def svg(rows, path, title, unit="ms"):
    """Horizontal bars: p50, whisker p90..p99. rows: (name, p50, p90, p99, ...)."""
    w, bar, gap, left = 780, 24, 12, 300
    h = 40 + len(rows) * (bar + gap) + 30
    top = max(r[3] for r in rows) * 1.15 or 1
    sx = lambda v: left + v / top * (w - left - 30)
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="20" font-size="14">{title}</text>']
    for i, r in enumerate(rows):
        n, a, b, c = r[:4]
        y = 35 + i * (bar + gap)
        col = "#2b7bb9" if n.startswith("reevec") or n.startswith("reeved") else (
            "#999" if n.startswith("floor") else ("#b94a48" if n.startswith("runc") else "#d9822b"))
        s.append(f'<text x="10" y="{y + bar * 0.7}">{n}</text>')
        s.append(f'<rect x="{left}" y="{y}" width="{max(sx(a) - left, 1):.1f}" height="{bar}" fill="{col}"/>')
        s.append(f'<line x1="{sx(b):.1f}" x2="{sx(c):.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" stroke="black"/>')
        s.append(f'<line x1="{sx(c):.1f}" x2="{sx(c):.1f}" y1="{y + 5}" y2="{y + bar - 5}" stroke="black"/>')
        s.append(f'<text x="{sx(c) + 4:.1f}" y="{y + bar * 0.7}">{a:.3g}</text>')
    ya = h - 20
    s.append(f'<line x1="{left}" x2="{w - 30}" y1="{ya}" y2="{ya}" stroke="black"/>')
    mag = 10 ** max(0, len(str(int(top / 6))) - 1)
    step = max(1, round(top / 6 / mag)) * mag if top >= 6 else max(top / 6, 0.1)
    v = 0.0
    while v <= top:
        s.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{ya}" y2="{ya + 4}" stroke="black"/>')
        s.append(f'<text x="{sx(v) - 4:.1f}" y="{ya + 16}">{v:g}</text>')
        v += step
    s.append(f'<text x="{w - 28}" y="{ya + 16}">{unit}</text>')
    s.append("</svg>")
    open(path, "w").write("\n".join(s) + "\n")


def strace_breakdown(path, top=8):
    """Offsets (ms from the first syscall) of the steps of one `reevec run` under strace -f -tt -T."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return ["(no strace log)"]
    # strace pads small pids: "98    13:24:01.123456 execve(..."
    lines = [re.sub(r"^(\d+) +", r"\1 ", l) for l in lines if re.match(r"\d+ +\d\d:\d\d:\d\d\.\d+ ", l)]
    if not lines:
        return ["(strace produced no output)"]
    marks = [("execve(\"" + reevec, "reevec exec'd"),
             ("memfd_create", "memfd for the sealed re-exec"),
             ("execveat", "re-exec from the sealed memfd"),
             ("clone3", "clone3 of the container init"),
             ("pivot_root", "pivot_root"),
             ("seccomp(", "seccomp filter installed"),
             ("execve(\"/bin/true", "exec of /bin/true"),
             ("+++ exited", "a process exited")]
    t = lambda l: sum(float(x) * m for x, m in zip(l.split()[1].split(":"), (3600, 60, 1)))
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
    for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        outl.append(f"| {k} | {v:.2f} |")
    return outl


def kv(words):
    return {k: float(v) for k, v in (w.split("=") for w in words if "=" in w)}


def mib(b):
    return b / (1 << 20)


def read(name):
    try:
        return open(W(name)).read()
    except OSError:
        return None


def progress_notes(name):
    """Lines of a VM part's progress that say something went wrong (left out, failed, budget)."""
    txt = read(name) or ""
    return [l.lstrip("# ").strip() for l in txt.splitlines()
            if re.search(r"left out|failed|budget|skipped|WARN|ERROR|ignored|not in the VM", l)]


def density(name):
    """density.txt → ({level: {...}}, {level: [memory.current bytes]}, {level: [kv]})."""
    lv, cg, st = {}, {}, {}
    for l in (read(name) or "").splitlines():
        w = l.split()
        if not w:
            continue
        if w[0] == "level":
            d = lv.setdefault(int(w[1]), {})
            for i in range(2, len(w) - 1, 2):
                try:
                    d[w[i]] = float(w[i + 1])
                except ValueError:
                    pass
        elif w[0] == "cg" and len(w) >= 4:
            cg.setdefault(int(w[1]), []).append(float(w[3]))
            st.setdefault(int(w[1]), []).append(kv(w[4:]))
    return lv, cg, st


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
rev = subprocess.getoutput("git -C " + os.path.dirname(os.path.abspath(__file__)) + " log -1 --format=%h")
host_start, host_csd, host_td = load("start.json"), load("csd.json"), load("td.json")
vm_start, vm_csd, vm_td = load("vm-start.json"), load("vm-csd.json"), load("vm-td.json")
hd_lv, _, _ = density("host-density.txt")
vd_lv, vd_cg, vd_st = density("vm-density.txt")
mem_rows = {}
for l in (read("vm-mem.txt") or "").splitlines():
    w = l.split()
    if len(w) >= 2:
        mem_rows.setdefault(w[0], []).append((float(w[1]), kv(w[2:])))
seccomp = sorted(f for f in os.listdir(work) if f.startswith("seccomp-") and f.endswith(".txt")
                 and os.path.getsize(W(f)) > 0)

md = ["# reeve benchmark results", "",
      f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `bash benches/run.sh"
      f"{' --quick' if quick == '1' else ''}` (commit {rev} + working tree; host figures {runs} runs, "
      f"VM figures {vmruns} runs).", "",
      f"Machine: {cpu}, {os.cpu_count()} cores, {mem / (1 << 20):.0f} GiB, kernel {platform.release()}; "
      f"load average {load0} before / {load1} after (the cores are shared with other jobs: compare ratios "
      "within one run, not absolute numbers across runs). VM: tests/vm/run.sh, qemu **TCG** (no KVM), "
      "1 vCPU, pure cgroup v2, Debian cloud kernel: absolute VM times are 10-100x the host's, only the "
      "ratios within the VM run mean something.", ""]

# ---- headline
md += ["## Summary against the issue 7 targets", "", "| figure | measured | target |", "|---|---|---|"]
if host_start:
    r, f, c = p50(host_start, "reevec run"), p50(host_start, "floor"), p50(host_start, "crun run")
    md.append(f"| host start p50, `reevec run` (no cgroups) | {r:.2f} ms: {ratio(r, f)} the floor, crun {ratio(c, r)} slower | ≤1.25x floor, crun ≥4x slower |")
if vm_start:
    r, f = p50(vm_start, "reevec run"), p50(vm_start, "floor")
    c, u = p50(vm_start, "crun run"), p50(vm_start, "runc run")
    md.append(f"| VM start p50 with cgroup limits (TCG) | reevec {ratio(r, f)} the floor; crun {ratio(c, r)}, runc {ratio(u, r)} the time of reevec | ≤1.25x floor, crun ≥4x, runc ≥10x |")
if hd_lv:
    big = max(hd_lv)
    d = hd_lv[big]
    md.append(f"| reeved, {big} tenants on the host (no limits) | {int(d.get('running', 0))} running after {d.get('up_ms', 0) / 1000:.2f} s, "
              f"RSS {d.get('rss_kb', 0) / 1024:.1f} MiB, SIGTERM teardown {d.get('teardown_ms', 0) / 1000:.2f} s | 1,000 in < 5 s, RSS < 30 MiB |")
if vd_lv:
    big = max(vd_lv)
    d = vd_lv[big]
    md.append(f"| reeved, {big} tenants in the VM (limits, TCG) | {int(d.get('running', 0))} running after {d.get('up_ms', 0) / 1000:.1f} s, "
              f"RSS {d.get('rss_kb', 0) / 1024:.1f} MiB, teardown {d.get('teardown_ms', 0) / 1000:.1f} s | (TCG: see below) |")
if vd_cg:
    big = max(vd_cg)
    md.append(f"| memory.current of a reeved tenant's cgroup right after start | p50 {mib(pct(vd_cg[big], 50)):.2f} MiB "
              f"(max {mib(max(vd_cg[big])):.2f}) | < 0.5 MiB |")
if mem_rows:
    parts = [f"{rt} {mib(pct([c for c, _ in v], 50)):.2f}" for rt, v in mem_rows.items()]
    md.append(f"| memory.current of a sleeping sandbox, p50 MiB (VM) | {', '.join(parts)} | reevec < 0.5 MiB |")
if host_td:
    r, c = p50(host_td, "reevec"), p50(host_td, "crun")
    md.append(f"| host delete -f of a running sandbox | reevec {r:.2f} ms, crun {ratio(c, r)} | |")
if vm_td:
    r, c, u = p50(vm_td, "reevec"), p50(vm_td, "crun"), p50(vm_td, "runc")
    md.append(f"| VM delete -f with cgroup (TCG) | crun {ratio(c, r)}, runc {ratio(u, r)} the time of reevec | |")
sj = None
for f in seccomp:
    try:
        sj = json.load(open(W(f[:-4] + ".json")))
    except (OSError, ValueError):
        pass
if sj:
    inst = "; ".join(f"{i['name']} {i['ns']['p50'] / 1000:.1f} µs" for i in sj.get("install", []))
    ov = "; ".join(f"{x['syscall']} {x['filter']} {x['overhead_pct_p50']:+.1f} %" for x in sj.get("syscalls", [])
                   if x.get("overhead_pct_p50") is not None
                   and (x.get("filter", "").startswith("reeve default") or x.get("filter", "").startswith("seccompiler")))
    md.append(f"| seccomp install p50 (seccomp(2) alone) | {inst} | < 0.1 ms |")
    md.append(f"| seccomp hot-syscall overhead p50 vs no filter | {ov} | < +10 % |")
else:
    md.append(f"| seccomp | {'see the seccomp section' if seccomp else 'not measured in this run'} | install < 0.1 ms, hot syscall < +10 % |")

# ---- host start
md += ["", "## 1. Start latency on the host (same /bin/true busybox bundle, one session)", ""]
if host_start:
    md += ["No cgroups on the host (hybrid: crun in `unshare -m` with a ro tmpfs on /sys/fs/cgroup, reevec",
           "with no cgroup in the bundle). The bundle is `reevec spec`'s: pid, network, ipc, uts, mount, cgroup",
           "namespaces, default seccomp profile, masked/read-only paths, read-only root. floor =",
           "benches/floor/floor.c: clone with the same namespaces + pivot_root + exec, no runtime.",
           "`run` is timed with hyperfine -N (no shell).", ""]
    md += table(host_start, "reevec run")
    if host_csd:
        md += ["", "create+start+delete (three runtime invocations, through a shell; hyperfine subtracts the shell):", ""]
        md += table(host_csd, "reevec create+start+delete")
    if host_td:
        md += ["", "Teardown of a running sandbox (`delete --force`: SIGKILL, wait, remove state; hyperfine -N):", ""]
        md += table(host_td, "reevec delete -f (running)")
    md += ["", "![host start latency](start.svg)", ""]
    svg(host_start + (host_csd or []), os.path.join(out, "start.svg"),
        "Host start latency, ms (bar = p50, whisker = p90..p99)")
else:
    md += ["(not run)"]

# ---- VM start
md += ["", "## 2. Start latency with cgroup limits in the VM: reevec, crun, runc, floor", ""]
notes = progress_notes("vm-start.progress")
if vm_start:
    md += ["The same bundle, now with `linux.resources` (memory 64 MiB, pids 64, cpu 0.5) and",
           "`cgroupsPath /bench/start`, so every runtime creates, fills and removes a cgroup v2 per run;",
           "`runc` 1.1.5 and `crun` 1.8.1 are Debian's. floor = floor.c with a cgroup argument: mkdir the",
           "cgroup, write the three limits, clone3 with CLONE_INTO_CGROUP, rmdir after exit.",
           "qemu TCG: every exec of a fresh binary is translated again, so a runtime that re-executes",
           "itself (reevec's sealed memfd copy, runc's too) pays that translation on every start; the",
           "host table is the one with real CPU costs.", ""]
    md += table(vm_start, "reevec run")
    if vm_csd:
        md += ["", "create+start+delete:", ""]
        md += table(vm_csd, "reevec create+start+delete")
    if vm_td:
        md += ["", "Teardown of a running sandbox with its cgroup (`delete --force`; the create+start is hyperfine's",
               "untimed --prepare):", ""]
        md += table(vm_td, "reevec delete -f")
    svg(vm_start + (vm_csd or []) + (vm_td or []), os.path.join(out, "vm.svg"),
        "VM (qemu TCG, cgroup v2) start and teardown, ms (bar = p50, whisker = p90..p99)")
    md += ["", "![VM start latency](vm.svg)", ""]
else:
    md += ["(not run or failed)"]
if notes:
    md += ["", "Notes from the VM run: " + "; ".join(notes)]

if mem_rows:
    md += ["", "### Memory charged to the sandbox's cgroup by each runtime (VM)", "",
           "A sandbox running `/bin/sleep` (busybox) with the same bundle, created and started one at a time;",
           "memory.current of its cgroup read right after `start` (the first sandbox of each runtime is not",
           "counted: it pulls busybox into the page cache).", "",
           "| runtime | samples | memory.current p50 MiB | min..max MiB | anon KiB | file KiB | kernel KiB | pagetables KiB | percpu KiB |",
           "|---|---|---|---|---|---|---|---|---|"]
    for rt, v in mem_rows.items():
        cur = [c for c, _ in v]
        med = lambda k: pct([s.get(k, 0) for _, s in v], 50) / 1024
        md.append(f"| {rt} | {len(v)} | {mib(pct(cur, 50)):.2f} | {mib(min(cur)):.2f}..{mib(max(cur)):.2f} | "
                  f"{med('anon'):.0f} | {med('file'):.0f} | {med('kernel'):.0f} | {med('pagetables'):.0f} | {med('percpu'):.0f} |")

vs = read("vm-strace.txt")
if vs:
    md += ["", "### Where reevec's start time goes in the VM (one `reevec run` under strace)", ""]
    md += strace_breakdown(W("vm-strace.txt"))

# ---- density
md += ["", "## 3. Density: reeved with many tenants", ""]
if hd_lv or vd_lv:
    md += ["Each tenant: a sandbox from reeved's bundle (user namespace with its own 65,536-id range, pid,",
           "net (lo up), ipc, uts, mount, cgroup namespaces, default seccomp, read-only busybox root, /data,",
           "/tmp tmpfs) running benches/vm/gateway.c, a static program that waits for SIGTERM; default",
           "`max_parallel_starts = 8`. *up* = from `reeved run` to `reeved status --json` showing every",
           "tenant `running` (polled every 0.2 s); RSS = reeved's VmRSS then (peak = VmHWM); teardown =",
           "SIGTERM to reeved's exit, every sandbox stopped (SIGTERM, wait) and deleted; SIGKILLed =",
           "gateways still alive `stop_grace_ms` (10 s) after their SIGTERM.", "",
           "| where | tenants | running | up s | ms per tenant | reeved RSS MiB | peak MiB | teardown s | SIGKILLed | left after |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for where, lv in (("host, no limits", hd_lv), ("VM (TCG), cgroup limits", vd_lv)):
        for n in sorted(lv):
            d = lv[n]
            run_n = d.get("running", 0)
            left = f"{int(d.get('cgroups_left', 0))} cgroups" if where.startswith("VM") else "-"
            md.append(f"| {where} | {n} | {int(run_n)} | {d.get('up_ms', 0) / 1000:.2f} | "
                      f"{d.get('up_ms', 0) / max(run_n, 1):.1f} | {d.get('rss_kb', 0) / 1024:.1f} | "
                      f"{d.get('hwm_kb', 0) / 1024:.1f} | {d.get('teardown_ms', 0) / 1000:.2f} | "
                      f"{int(d.get('sigkilled', 0))} | {left} |")
    rows = []
    for n in sorted(hd_lv):
        u = hd_lv[n].get("up_ms", 0) / 1000
        t = hd_lv[n].get("teardown_ms", 0) / 1000
        rows += [(f"reeved up, {n} tenants", u, u, u), (f"reeved teardown, {n} tenants", t, t, t)]
    if rows:
        svg(rows, os.path.join(out, "density.svg"), "reeved on the host (no limits): time to all running / to all stopped, s", "s")
        md += ["", "![density](density.svg)"]
    md += ["", "The host runs reeved in `unshare -m` with a ro tmpfs over /sys/fs/cgroup: it sees no cgroup2,",
           "runs its no-limits mode and nobody creates a cgroup on the hybrid host; the VM runs it with limits",
           "(memory 64M, pids 16, cpu 0.1 per tenant) at TCG speed, so only the smaller levels fit there."]
    for n in sorted(vd_cg):
        c = vd_cg[n]
        med = lambda k: pct([s.get(k, 0) for s in vd_st[n]], 50) / 1024
        md += ["", f"memory.current of the {len(c)} tenant cgroups right after all {n} were running (VM): "
               f"p50 {mib(pct(c, 50)):.3f} MiB, p90 {mib(pct(c, 90)):.3f}, max {mib(max(c)):.3f}; "
               f"p50 breakdown anon {med('anon'):.0f} KiB, file {med('file'):.0f} KiB, kernel {med('kernel'):.0f} KiB "
               f"(of which pagetables {med('pagetables'):.0f}, percpu {med('percpu'):.0f}, slab {med('slab'):.0f}, "
               f"kernel_stack {med('kernel_stack'):.0f}), sock {med('sock'):.0f} KiB."]
    notes = progress_notes("host-density.progress") + progress_notes("vm-density.progress")
    if notes:
        md += ["", "Notes: " + "; ".join(notes)]
else:
    md += ["(not run)"]

def verbatim(text):
    """A bench program's stdout as a code block, without its 'JSON written to' line."""
    return ["```"] + [l for l in (text or "").rstrip().splitlines()
                      if not l.startswith("JSON written")] + ["```", ""]


# ---- seccomp
md += ["", "## 4. Seccomp: install time and hot-syscall cost", ""]
if seccomp:
    for f in seccomp:
        md += [f"Output of `cargo bench -p reeve-runtime --bench {f[8:-4]}` (verbatim):", ""]
        md += verbatim(read(f))
else:
    md += ["Not measured in this run: no seccomp bench program under runtime/benches/."]

# ---- engine (in process)
md += ["", "## 5. The engine in process (reeve_runtime, no CLI exec) against the floor", ""]
engine = read("engine.txt")
if engine:
    md += ["Output of `cargo bench -p reeve-runtime --bench engine` (verbatim): create, start, wait and",
           "delete through the library, as an embedding supervisor would, without the sealed re-exec of",
           "the CLI; the C floor runs in the same loop.", ""]
    md += verbatim(engine)
else:
    md += ["Not measured in this run."]

if host_start:
    md += ["", "## Where reevec's start time goes on the host (one `reevec run` under `strace -f -tt -T`)", ""]
    md += strace_breakdown(W("strace.txt"))
open(os.path.join(out, "RESULTS.md"), "w").write("\n".join(md) + "\n")
