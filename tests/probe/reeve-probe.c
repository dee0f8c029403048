/*
 * reeve-probe: the isolation probe. A static binary that runs inside a sandbox the way the
 * gateway would, makes one real attack attempt per check, and prints one verdict per check:
 *
 *   blocked  the attempt failed (with the errno when a syscall refused it)
 *   escaped  the attempt succeeded: the sandbox let something out (what succeeded is said)
 *   error    the check itself could not run (with the errno)
 *   skipped  the check lacks its context (a flag naming the other tenant, the host port...)
 *
 * Every check runs in a forked child with a time limit, so that an attempt the sandbox wrongly
 * allows cannot change the probe itself. Attempts are made harmless where a success would touch
 * the host: arguments are chosen so that the kernel's permission check comes first and the call
 * fails right after it (an errno other than EPERM then means the permission check was passed,
 * which is reported as an escape); files of the host are opened for writing but never written,
 * except for rewriting a byte with its own value where only a write proves the escape.
 *
 * Usage: reeve-probe [--json] [--only NAME[,NAME|PREFIX.]...] [--list] [context flags]
 *        reeve-probe --peer-serve --peer-key KEY --listen PORT [--data-dir DIR]   (the peer tenant)
 *        reeve-probe --report-ids                                  (used by the setuid checks)
 * Context flags (each also read from the environment as REEVE_PROBE_<NAME>, e.g.
 * REEVE_PROBE_PEER_FILE for --peer-file):
 *   --peer-file PATH      another tenant's secret file, as the host sees it
 *   --peer-inner PATH     the same file as the other tenant sees it (e.g. /data/secret)
 *   --peer-canary TEXT    text the secret file holds
 *   --peer-pid PID        the other tenant's process, as a host pid
 *   --peer-marker TEXT    the other tenant's command line holds "--marker TEXT"
 *   --peer-key KEY        SysV IPC key / name suffix of the other tenant's IPC objects
 *   --peer-addr IP:PORT   a TCP service of the other tenant
 *   --host-port IP:PORT   a host TCP port that is not a listed service (loopback)
 *   --host-addr IP:PORT   the same port on a host address
 *   --host-abstract NAME  an abstract Unix socket listening on the host
 *   --host-unix PATH      a Unix socket file listening on the host
 *   --host-root-dev M:m   the device of the host's root file system
 *   --host-iface NAME     a host network interface
 *   --runtime-dir PATH    the read-only runtime (e.g. /opt/gateway)
 *   --layer1-dir PATH     the read-only Layer 1 config (e.g. /etc/reeve/layer1)
 *   --data-dir PATH       the sandbox's own writable data dir (e.g. /data)
 *   --suid-bin PATH       a setuid-root copy of this probe
 *   --fcaps-bin PATH      a copy of this probe with file capabilities
 *   --fcaps-wide-bin PATH a copy with file capabilities outside the bounding set
 *   --masked LIST         comma-separated masked paths (default: the reevec/runc default list)
 *   --race-ms N           watch for processes entering the sandbox (exec) for up to N ms in the
 *                         CVE-2019-5736 check; the file <data-dir>/race-ready says it is watching,
 *                         creating <data-dir>/race-stop ends the watch early
 *
 * Output (--json): one object per line, {"check","verdict","errno"?,"reason","attempt"}, then
 * {"summary":{"blocked":N,"escaped":N,"error":N,"skipped":N}}. Exit status 1 if anything escaped.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/rtnetlink.h>
#include <linux/sched.h>
#include <linux/vm_sockets.h>
#include <linux/if_link.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef DEVPTS_SUPER_MAGIC
#define DEVPTS_SUPER_MAGIC 0x1cd1
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef PTRACE_SEIZE
#define PTRACE_SEIZE 0x4206
#endif
#define PTRACE_DETACH_ 17

#define CHECK_TIMEOUT_S 10
#define MAX_PIDS 4096

enum verdict { V_BLOCKED, V_ESCAPED, V_ERROR, V_SKIPPED };
static const char *VNAME[] = {"blocked", "escaped", "error", "skipped"};

struct result {
	int set;
	int verdict;
	int err;
	char why[900];
};

/* The result of the check running in this (child) process. */
static struct result *R;

static void set_result(int v, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_result(int v, int err, const char *fmt, ...)
{
	va_list ap;

	if (R->set)
		return;
	R->set = 1;
	R->verdict = v;
	R->err = err;
	va_start(ap, fmt);
	vsnprintf(R->why, sizeof(R->why), fmt, ap);
	va_end(ap);
}

#define BLOCKED(e, ...) do { set_result(V_BLOCKED, (e), __VA_ARGS__); return; } while (0)
#define ESCAPED(...) do { set_result(V_ESCAPED, 0, __VA_ARGS__); return; } while (0)
#define ESCAPED_E(e, ...) do { set_result(V_ESCAPED, (e), __VA_ARGS__); return; } while (0)
#define FAILED(e, ...) do { set_result(V_ERROR, (e), __VA_ARGS__); return; } while (0)
#define SKIP(...) do { set_result(V_SKIPPED, 0, __VA_ARGS__); return; } while (0)
#define NEED(field, flag) do { if (!C.field) SKIP("no context: give " flag); } while (0)

/* ---------------------------------------------------------------- context */

static struct {
	const char *peer_file, *peer_inner, *peer_canary, *peer_marker, *peer_key_s;
	const char *peer_addr, *host_port, *host_addr, *host_abstract, *host_unix;
	const char *host_root_dev, *host_iface, *runtime_dir, *layer1_dir, *data_dir;
	const char *suid_bin, *fcaps_bin, *fcaps_wide_bin, *masked, *peer_pid_s, *race_ms_s, *listen_s;
	int peer_pid;
	key_t peer_key;
	int race_ms;
} C;

/* Facts recorded at the very start of main, before the probe opens anything. */
static int start_fds[256], n_start_fds;
static char start_fd_target[256][256];

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : NULL;
	return n ? n : "?";
}

/* ------------------------------------------------------------------ helpers */

static ssize_t read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = 0, r;

	if (fd < 0)
		return -1;
	while (got < (ssize_t)n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
		got += r;
	buf[got] = 0;
	close(fd);
	return got;
}

/* The value of `Key:` in /proc/self/status, parsed as hex (capability sets). */
static unsigned long long status_hex(const char *key)
{
	static char buf[8192];
	char *p;
	size_t kl = strlen(key);

	if (read_file("/proc/self/status", buf, sizeof buf) < 0)
		return ~0ULL;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ':')
			return strtoull(p + kl + 1, NULL, 16);
	return ~0ULL;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int is_pid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Pids visible in this /proc (the sandbox's pid namespace). */
static int visible_pids(int *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) && n < max)
		if (is_pid_name(e->d_name))
			out[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

/* The command line of a visible pid with NULs turned to spaces. */
static int cmdline_of(int pid, char *buf, size_t n)
{
	char p[64];
	ssize_t r;

	snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
	r = read_file(p, buf, n);
	if (r < 0)
		return -1;
	for (ssize_t i = 0; i < r; i++)
		if (!buf[i])
			buf[i] = ' ';
	return 0;
}

/*
 * Whether a command line (NULs as spaces) is the other tenant's: it holds "--marker <TEXT>".
 * The probe's own "--peer-marker <TEXT>" does not match.
 */
static int is_peer_cmdline(const char *buf)
{
	char pat[300];

	if (!C.peer_marker)
		return 0;
	snprintf(pat, sizeof pat, "--marker %s", C.peer_marker);
	return strstr(buf, pat) != NULL;
}

/*
 * What the number --peer-pid names in this pid namespace: 0 nothing visible, 1 the peer itself
 * (its command line carries the marker: an escape), 2 an unrelated process of this sandbox.
 */
static int peer_pid_here(void)
{
	char buf[4096];

	if (cmdline_of(C.peer_pid, buf, sizeof buf) < 0)
		return 0;
	return is_peer_cmdline(buf) ? 1 : 2;
}

/* The first regular file in a directory. */
static int first_file_in(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		snprintf(out, n, "%s/%s", dir, e->d_name);
		if (!lstat(out, &st) && S_ISREG(st.st_mode)) {
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	errno = ENOENT;
	return -1;
}

/* Whether file `path` holds the other tenant's canary (-1 with errno when it cannot be read). */
static int holds_canary(const char *path)
{
	char buf[4096];

	if (read_file(path, buf, sizeof buf) < 0)
		return -1;
	return C.peer_canary && strstr(buf, C.peer_canary) != NULL;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	int port;

	if (!colon || colon - s >= (int)sizeof host)
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	port = atoi(colon + 1);
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[strlen(host) - 1] = 0;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		*len = sizeof *a;
	}
	return 0;
}

/* connect() with a 2 s limit: 0 connected, -1 with errno. */
static int try_connect(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd p;
	int err = 0;
	socklen_t el = sizeof err;

	if (fd < 0)
		return -1;
	if (connect(fd, sa, len) == 0)
		goto ok;
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, 2000) != 1) {
		close(fd);
		errno = ETIMEDOUT;
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		close(fd);
		errno = err;
		return -1;
	}
ok:
	close(fd);
	return 0;
}

static int connect_unix(const char *path, int abstract)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r, e;

	if (fd < 0)
		return -1;
	if (abstract) {
		strncpy(a.sun_path + 1, path, sizeof a.sun_path - 2);
		len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
	} else {
		strncpy(a.sun_path, path, sizeof a.sun_path - 1);
		len = sizeof a;
	}
	r = connect(fd, (struct sockaddr *)&a, len);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/* A syscall that must fail: blocked with its errno, escaped if it returned >= 0. */
static void must_fail(long rc, const char *what)
{
	int e = errno;

	if (rc >= 0)
		ESCAPED("%s succeeded (returned %ld)", what, rc);
	BLOCKED(e, "%s refused", what);
}

/*
 * A syscall called with arguments that are invalid *after* its permission check: EPERM (or
 * EACCES) means refused, any other result means the permission check was passed.
 */
static void must_be_denied(long rc, const char *what, const char *priv)
{
	int e = errno;

	if (rc >= 0)
		ESCAPED("%s succeeded (returned %ld): %s is held", what, rc, priv);
	if (e == EPERM || e == EACCES)
		BLOCKED(e, "%s refused before the kernel looked at the arguments (%s)", what, priv);
	ESCAPED_E(e, "%s passed the %s check and failed only on its arguments", what, priv);
}

/* Open for writing and report: the open succeeding is the escape; nothing is written. */
static void open_write_must_fail(const char *path, const char *what)
{
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd >= 0)
		ESCAPED("%s: %s opened for writing (nothing written)", what, path);
	BLOCKED(errno, "%s: open(%s, O_WRONLY) refused", what, path);
}

/* ---------------------------------------------------------------- files */

static void chk_files_abs_path(void)
{
	int c;

	NEED(peer_file, "--peer-file");
	c = holds_canary(C.peer_file);
	if (c < 0)
		BLOCKED(errno, "another tenant's file %s is not in this mount namespace", C.peer_file);
	if (c == 1)
		ESCAPED("read another tenant's secret through its host path %s", C.peer_file);
	BLOCKED(0, "%s exists here but is not the other tenant's file (no canary)", C.peer_file);
}

static void chk_files_abs_dir(void)
{
	char dir[512], *slash;
	DIR *d;
	struct dirent *e;
	int n = 0;

	NEED(peer_file, "--peer-file");
	snprintf(dir, sizeof dir, "%s", C.peer_file);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		SKIP("--peer-file has no parent directory");
	*slash = 0;
	d = opendir(dir);
	if (!d)
		BLOCKED(errno, "another tenant's data dir %s is not in this mount namespace", dir);
	while ((e = readdir(d)))
		if (!strcmp(e->d_name, slash + 1))
			n++;
	closedir(d);
	if (n)
		ESCAPED("listed another tenant's data dir %s (it holds %s)", dir, slash + 1);
	BLOCKED(0, "%s exists here but does not hold the other tenant's file", dir);
}

static void chk_files_proc_peer_root(void)
{
	char p[600];
	int c, here;

	NEED(peer_pid, "--peer-pid");
	NEED(peer_inner, "--peer-inner");
	here = peer_pid_here();
	snprintf(p, sizeof p, "/proc/%d/root%s", C.peer_pid, C.peer_inner);
	c = holds_canary(p);
	if (c == 1)
		ESCAPED("read another tenant's secret through %s", p);
	if (c < 0)
		BLOCKED(errno, "%s: the other tenant's pid is not in this pid namespace", p);
	BLOCKED(0, "%s names a process of this sandbox (%s), not the other tenant", p,
		here == 2 ? "same number" : "?");
}

static void chk_files_proc_root_scan(void)
{
	static int pids[MAX_PIDS];
	struct stat me, st;
	char p[700];
	int n = visible_pids(pids, MAX_PIDS), checked = 0;

	if (n < 0)
		FAILED(errno, "cannot list /proc");
	if (stat("/", &me))
		FAILED(errno, "stat /");
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof p, "/proc/%d/root", pids[i]);
		if (stat(p, &st))
			continue;
		checked++;
		if (!same_file(&st, &me))
			ESCAPED("pid %d is visible and its root (/proc/%d/root) is another tree", pids[i],
				pids[i]);
		if (C.peer_file) {
			snprintf(p, sizeof p, "/proc/%d/root%s", pids[i], C.peer_file);
			if (holds_canary(p) == 1)
				ESCAPED("read another tenant's secret through %s", p);
		}
	}
	BLOCKED(0, "all %d visible processes share this sandbox's root; none reaches another tenant",
		checked);
}

static void plant_symlink_check(const char *target, const char *name)
{
	char link[512];
	int c, e;

	snprintf(link, sizeof link, "%s/%s", C.data_dir, name);
	unlink(link);
	if (symlink(target, link))
		FAILED(errno, "cannot plant symlink %s in the data dir", link);
	c = holds_canary(link);
	e = errno;
	unlink(link);
	if (c == 1)
		ESCAPED("a symlink planted in the data dir (%s -> %s) reads another tenant's secret",
			link, target);
	if (c < 0)
		BLOCKED(e, "symlink %s -> %s resolves inside this sandbox's root only", link, target);
	BLOCKED(0, "symlink %s -> %s reaches a file without the other tenant's canary", link,
		target);
}

static void chk_files_symlink_abs(void)
{
	NEED(data_dir, "--data-dir");
	NEED(peer_file, "--peer-file");
	plant_symlink_check(C.peer_file, "reeve-probe-sym-abs");
}

static void chk_files_symlink_climb(void)
{
	char t[700];

	NEED(data_dir, "--data-dir");
	NEED(peer_file, "--peer-file");
	snprintf(t, sizeof t, "../../../../../../../../../../../..%s", C.peer_file);
	plant_symlink_check(t, "reeve-probe-sym-climb");
}

static void hardlink_check(const char *src, const char *what)
{
	char dst[512];

	snprintf(dst, sizeof dst, "%s/reeve-probe-hardlink", C.data_dir);
	unlink(dst);
	if (link(src, dst) == 0) {
		unlink(dst);
		ESCAPED("hard link of %s (%s) planted in the data dir as %s", src, what, dst);
	}
	BLOCKED(errno, "link(%s, %s) refused: %s is on another mount", src, dst, what);
}

static void chk_files_hardlink_runtime(void)
{
	char f[512];

	NEED(data_dir, "--data-dir");
	NEED(runtime_dir, "--runtime-dir");
	if (first_file_in(C.runtime_dir, f, sizeof f))
		FAILED(errno, "no regular file in %s", C.runtime_dir);
	hardlink_check(f, "the read-only runtime");
}

static void chk_files_hardlink_layer1(void)
{
	char f[512];

	NEED(data_dir, "--data-dir");
	NEED(layer1_dir, "--layer1-dir");
	if (first_file_in(C.layer1_dir, f, sizeof f))
		FAILED(errno, "no regular file in %s", C.layer1_dir);
	hardlink_check(f, "the read-only Layer 1 config");
}

static void chk_files_hardlink_rootfs(void)
{
	char f[512];

	NEED(data_dir, "--data-dir");
	if (access("/etc/passwd", F_OK) == 0)
		snprintf(f, sizeof f, "/etc/passwd");
	else if (first_file_in("/bin", f, sizeof f))
		FAILED(errno, "no regular file in /etc/passwd or /bin");
	hardlink_check(f, "the read-only root file system");
}

static void chk_files_open_by_handle(void)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[8];
	} h;
	int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
	uint32_t ino = 2, gen = 0;
	struct stat me, st;

	if (mfd < 0)
		FAILED(errno, "open /");
	/* "Shocker": the root directory of the underlying file system (inode 2 on ext2/3/4). */
	h.fh.handle_bytes = 8;
	h.fh.handle_type = 1; /* FILEID_INO32_GEN */
	memcpy(h.bytes, &ino, 4);
	memcpy(h.bytes + 4, &gen, 4);
	fd = syscall(SYS_open_by_handle_at, mfd, &h.fh, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		BLOCKED(errno, "open_by_handle_at(inode 2 of the root's file system) refused");
	fstat(fd, &st);
	stat("/", &me);
	ESCAPED("open_by_handle_at opened inode %lu of the underlying file system%s",
		(unsigned long)st.st_ino, same_file(&st, &me) ? "" : " outside this root");
}

static const char *scratch_dir(void)
{
	return C.data_dir ? C.data_dir : "/mnt";
}

static void chk_files_mount_tmpfs(void)
{
	const char *d = scratch_dir();

	if (mount("reeve-probe", d, "tmpfs", 0, "size=64k") == 0) {
		umount2(d, MNT_DETACH);
		ESCAPED("mounted a tmpfs on %s", d);
	}
	BLOCKED(errno, "mount(tmpfs on %s) refused", d);
}

static void chk_files_remount_root_rw(void)
{
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL) == 0) {
		mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
		ESCAPED("remounted / read-write");
	}
	BLOCKED(errno, "remount of / read-write refused");
}

static void chk_files_bind_mount(void)
{
	const char *d = scratch_dir();

	if (mount("/", d, NULL, MS_BIND | MS_REC, NULL) == 0) {
		umount2(d, MNT_DETACH);
		ESCAPED("bind-mounted / onto %s", d);
	}
	BLOCKED(errno, "bind mount of / onto %s refused", d);
}

static void chk_files_umount_runtime(void)
{
	NEED(runtime_dir, "--runtime-dir");
	if (umount2(C.runtime_dir, MNT_DETACH) == 0)
		ESCAPED("unmounted the read-only runtime at %s", C.runtime_dir);
	BLOCKED(errno, "umount2(%s) refused", C.runtime_dir);
}

static void chk_files_fsopen(void)
{
	must_fail(syscall(SYS_fsopen, "tmpfs", 0), "fsopen(tmpfs) (new mount API)");
}

static void chk_files_open_tree(void)
{
	must_fail(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE),
		  "open_tree(/, OPEN_TREE_CLONE) (detached copy of the mount tree)");
}

static int block_scan(const char *dir, int depth, int *found, int *opened, char *what, size_t n,
		      int *last_err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[600];

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st))
			continue;
		if (S_ISBLK(st.st_mode)) {
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			(*found)++;
			if (fd >= 0) {
				(*opened)++;
				snprintf(what, n, "%s (%u:%u)", p, major(st.st_rdev), minor(st.st_rdev));
				close(fd);
			} else {
				*last_err = errno;
			}
		} else if (S_ISDIR(st.st_mode) && depth < 3) {
			block_scan(p, depth + 1, found, opened, what, n, last_err);
		}
	}
	closedir(d);
	return 0;
}

static void chk_files_block_devices(void)
{
	int found = 0, opened = 0, err = 0;
	char what[700] = "";

	block_scan("/dev", 0, &found, &opened, what, sizeof what, &err);
	if (opened)
		ESCAPED("opened block device %s (%d block nodes in /dev)", what, found);
	if (found)
		BLOCKED(err, "%d block device nodes in /dev, none can be opened", found);
	BLOCKED(0, "no block device node in /dev");
}

static void mknod_check(mode_t type, dev_t dev, const char *what)
{
	const char *dirs[] = {"/dev", C.data_dir, "/tmp"};
	char p[512], errs[300] = "";
	int e = 0;

	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		if (!dirs[i])
			continue;
		snprintf(p, sizeof p, "%s/reeve-probe-node", dirs[i]);
		unlink(p);
		if (mknod(p, type | 0600, dev) == 0) {
			int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			int oe = errno;
			if (fd >= 0)
				close(fd);
			unlink(p);
			if (fd >= 0)
				ESCAPED("mknod %s %s (%u:%u) and opened it", what, p, major(dev),
					minor(dev));
			/* The node exists but cannot be used: the device cgroup stopped the open. */
			snprintf(errs + strlen(errs), sizeof errs - strlen(errs),
				 "%s created but open %s; ", dirs[i], ename(oe));
			e = oe;
			continue;
		}
		e = errno;
		snprintf(errs + strlen(errs), sizeof errs - strlen(errs), "%s: %s; ", dirs[i],
			 ename(e));
	}
	BLOCKED(e, "mknod of %s (%u:%u) refused or unusable everywhere (%s)", what, major(dev),
		minor(dev), errs);
}

static void chk_files_mknod_block(void)
{
	dev_t dev = makedev(8, 0);
	unsigned ma, mi;

	if (C.host_root_dev && sscanf(C.host_root_dev, "%u:%u", &ma, &mi) == 2)
		dev = makedev(ma, mi);
	mknod_check(S_IFBLK, dev, "a block device for the host's disk");
}

static void chk_files_mknod_mem(void)
{
	mknod_check(S_IFCHR, makedev(1, 1), "a character device for /dev/mem");
}

static void chk_files_dev_mem(void)
{
	const char *devs[] = {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/ram0", "/dev/vda",
			      "/dev/sda", "/dev/nvme0n1"};
	int e = ENOENT;

	for (unsigned i = 0; i < sizeof devs / sizeof *devs; i++) {
		int fd = open(devs[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			ESCAPED("opened %s", devs[i]);
		if (errno != ENOENT)
			e = errno;
	}
	BLOCKED(e, "none of /dev/mem, /dev/kmem, /dev/port or a host disk node can be opened");
}

static void chk_files_write_rootfs(void)
{
	int fd = open("/reeve-probe-write", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		unlink("/reeve-probe-write");
		ESCAPED("created /reeve-probe-write in the read-only root");
	}
	BLOCKED(errno, "creating a file in / refused");
}

static void ro_write_existing(const char *dir, const char *flag, const char *what)
{
	char f[512];

	if (!dir)
		SKIP("no context: give %s", flag);
	if (first_file_in(dir, f, sizeof f))
		FAILED(errno, "no regular file in %s", dir);
	open_write_must_fail(f, what);
}

static void ro_create(const char *dir, const char *flag, const char *what)
{
	char f[512];
	int fd;

	if (!dir)
		SKIP("no context: give %s", flag);
	snprintf(f, sizeof f, "%s/reeve-probe-new", dir);
	fd = open(f, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		unlink(f);
		ESCAPED("created %s in %s", f, what);
	}
	BLOCKED(errno, "creating %s in %s refused", f, what);
}

static void ro_remount(const char *dir, const char *flag, const char *what)
{
	if (!dir)
		SKIP("no context: give %s", flag);
	if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND, NULL) == 0) {
		mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
		ESCAPED("remounted %s (%s) read-write", dir, what);
	}
	BLOCKED(errno, "remounting %s (%s) read-write refused", dir, what);
}

static void ro_chmod(const char *dir, const char *flag, const char *what)
{
	char f[512];
	struct stat st;

	if (!dir)
		SKIP("no context: give %s", flag);
	if (first_file_in(dir, f, sizeof f) || stat(f, &st))
		FAILED(errno, "no regular file in %s", dir);
	if (chmod(f, st.st_mode & 07777) == 0)
		ESCAPED("chmod of %s (%s) accepted", f, what);
	BLOCKED(errno, "chmod of %s (%s) refused", f, what);
}

static void chk_files_runtime_write(void) { ro_write_existing(C.runtime_dir, "--runtime-dir", "the runtime"); }
static void chk_files_runtime_create(void) { ro_create(C.runtime_dir, "--runtime-dir", "the runtime"); }
static void chk_files_runtime_chmod(void) { ro_chmod(C.runtime_dir, "--runtime-dir", "the runtime"); }
static void chk_files_runtime_remount(void) { ro_remount(C.runtime_dir, "--runtime-dir", "the runtime"); }
static void chk_files_layer1_write(void) { ro_write_existing(C.layer1_dir, "--layer1-dir", "the Layer 1 config"); }
static void chk_files_layer1_create(void) { ro_create(C.layer1_dir, "--layer1-dir", "the Layer 1 config"); }
static void chk_files_layer1_chmod(void) { ro_chmod(C.layer1_dir, "--layer1-dir", "the Layer 1 config"); }
static void chk_files_layer1_remount(void) { ro_remount(C.layer1_dir, "--layer1-dir", "the Layer 1 config"); }

/* -------------------------------------------------------------- processes */

static void chk_proc_see_peer(void)
{
	static int pids[MAX_PIDS];
	char buf[4096];
	int n;

	NEED(peer_marker, "--peer-marker");
	n = visible_pids(pids, MAX_PIDS);
	if (n < 0)
		FAILED(errno, "cannot list /proc");
	for (int i = 0; i < n; i++)
		if (pids[i] != getpid() && cmdline_of(pids[i], buf, sizeof buf) == 0 &&
		    is_peer_cmdline(buf))
			ESCAPED("the other tenant's process is visible as pid %d: %.200s", pids[i], buf);
	BLOCKED(0, "none of the %d visible processes is the other tenant's", n);
}

static void chk_proc_foreign_ns(void)
{
	static int pids[MAX_PIDS];
	const char *ns[] = {"pid", "mnt", "net", "ipc", "uts", "cgroup", "user"};
	char mine[8][64], p[128], l[64];
	int n = visible_pids(pids, MAX_PIDS);

	if (n < 0)
		FAILED(errno, "cannot list /proc");
	for (int j = 0; j < 7; j++) {
		snprintf(p, sizeof p, "/proc/self/ns/%s", ns[j]);
		ssize_t r = readlink(p, mine[j], 63);
		mine[j][r > 0 ? r : 0] = 0;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 7; j++) {
			snprintf(p, sizeof p, "/proc/%d/ns/%s", pids[i], ns[j]);
			ssize_t r = readlink(p, l, 63);
			if (r <= 0)
				continue;
			l[r] = 0;
			if (strcmp(l, mine[j]))
				ESCAPED("visible pid %d lives in another %s namespace (%s, ours %s)",
					pids[i], ns[j], l, mine[j]);
		}
	BLOCKED(0, "all %d visible processes share this sandbox's namespaces", n);
}

static void chk_proc_signal_peer(void)
{
	int here;

	NEED(peer_pid, "--peer-pid");
	here = peer_pid_here();
	if (kill(C.peer_pid, 0) == 0) {
		if (here == 2)
			BLOCKED(0, "pid %d is a process of this sandbox, not the other tenant",
				C.peer_pid);
		ESCAPED("kill(%d, 0) reached the other tenant's process", C.peer_pid);
	}
	BLOCKED(errno, "kill(%d, 0): the other tenant's pid does not exist here", C.peer_pid);
}

static void chk_proc_kill_all(void)
{
	static int pids[MAX_PIDS];
	int n, others = 0, e;
	int rc = kill(-1, 0);

	e = errno;
	n = visible_pids(pids, MAX_PIDS);
	for (int i = 0; i < n; i++)
		if (pids[i] != getpid() && pids[i] != 1)
			others++;
	if (rc == 0 && others == 0)
		ESCAPED("kill(-1, 0) reached processes although none but pid 1 and the caller are "
			"visible");
	if (rc == 0)
		BLOCKED(0, "kill(-1, 0) reached only the %d processes visible in this sandbox", others);
	BLOCKED(e, "kill(-1, 0) found no process to signal (%d others visible)", others);
}

static void chk_proc_ptrace_peer(void)
{
	NEED(peer_pid, "--peer-pid");
	if (syscall(SYS_ptrace, PTRACE_SEIZE, C.peer_pid, 0, 0) == 0) {
		syscall(SYS_ptrace, PTRACE_DETACH_, C.peer_pid, 0, 0);
		if (peer_pid_here() == 2)
			BLOCKED(0, "pid %d is a process of this sandbox; ptrace is allowed within it",
				C.peer_pid);
		ESCAPED("ptrace(PTRACE_SEIZE) attached to the other tenant's pid %d", C.peer_pid);
	}
	BLOCKED(errno, "ptrace(PTRACE_SEIZE, %d) refused", C.peer_pid);
}

static void chk_proc_vm_readv_peer(void)
{
	char b;
	struct iovec l = {&b, 1}, r = {(void *)0x400000, 1};

	NEED(peer_pid, "--peer-pid");
	if (syscall(SYS_process_vm_readv, C.peer_pid, &l, 1, &r, 1, 0) >= 0 || errno == EFAULT) {
		if (peer_pid_here() == 2)
			BLOCKED(0, "pid %d is a process of this sandbox", C.peer_pid);
		ESCAPED("process_vm_readv reached the memory of the other tenant's pid %d",
			C.peer_pid);
	}
	BLOCKED(errno, "process_vm_readv(%d) refused", C.peer_pid);
}

static void chk_proc_pidfd_peer(void)
{
	long fd;

	NEED(peer_pid, "--peer-pid");
	fd = syscall(SYS_pidfd_open, C.peer_pid, 0);
	if (fd >= 0) {
		if (peer_pid_here() == 2)
			BLOCKED(0, "pid %d is a process of this sandbox", C.peer_pid);
		ESCAPED("pidfd_open(%d) opened the other tenant's process", C.peer_pid);
	}
	BLOCKED(errno, "pidfd_open(%d) refused", C.peer_pid);
}

static void chk_proc_peer_mem(void)
{
	char p[64];
	int fd;

	NEED(peer_pid, "--peer-pid");
	snprintf(p, sizeof p, "/proc/%d/mem", C.peer_pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (peer_pid_here() == 2)
			BLOCKED(0, "pid %d is a process of this sandbox", C.peer_pid);
		ESCAPED("opened %s of the other tenant", p);
	}
	BLOCKED(errno, "open(%s) refused", p);
}

static void chk_proc_setns_peer(void)
{
	char p[64];
	int fd;

	NEED(peer_pid, "--peer-pid");
	snprintf(p, sizeof p, "/proc/%d/ns/net", C.peer_pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		BLOCKED(errno, "open(%s) refused: the other tenant's namespaces are out of reach", p);
	if (peer_pid_here() == 2)
		BLOCKED(0, "pid %d is a process of this sandbox", C.peer_pid);
	if (setns(fd, CLONE_NEWNET) == 0)
		ESCAPED("joined the other tenant's network namespace through %s", p);
	ESCAPED("opened the other tenant's %s (setns then refused: %s)", p, ename(errno));
}

/* -------------------------------------------------------------------- IPC */

static void sysv_peer(int kind)
{
	const char *names[] = {"shmget", "msgget", "semget"};
	int id;

	NEED(peer_key_s, "--peer-key");
	id = kind == 0 ? shmget(C.peer_key, 0, 0) : kind == 1 ? msgget(C.peer_key, 0)
							  : semget(C.peer_key, 0, 0);
	if (id < 0)
		BLOCKED(errno, "%s(0x%x): the other tenant's object is not in this IPC namespace",
			names[kind], C.peer_key);
	if (kind == 0) {
		char *m = shmat(id, NULL, SHM_RDONLY);
		if (m != (void *)-1 && C.peer_canary && strstr(m, C.peer_canary))
			ESCAPED("attached the other tenant's shared memory (key 0x%x) and read its "
				"canary", C.peer_key);
	}
	ESCAPED("%s(0x%x) found the other tenant's object (id %d)", names[kind], C.peer_key, id);
}

static void chk_ipc_shm_peer(void) { sysv_peer(0); }
static void chk_ipc_msg_peer(void) { sysv_peer(1); }
static void chk_ipc_sem_peer(void) { sysv_peer(2); }

static void chk_ipc_sysvipc_listing(void)
{
	const char *f[] = {"/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem"};
	char buf[16384];

	for (int i = 0; i < 3; i++) {
		if (read_file(f[i], buf, sizeof buf) < 0)
			continue;
		char *nl = strchr(buf, '\n');
		if (nl && nl[1])
			ESCAPED("%s lists IPC objects this sandbox never made: %.200s", f[i], nl + 1);
	}
	BLOCKED(0, "/proc/sysvipc lists no object: other tenants' SysV IPC is invisible");
}

static void chk_ipc_mq_peer(void)
{
	char name[64];
	long fd;

	NEED(peer_key_s, "--peer-key");
	snprintf(name, sizeof name, "reeve-probe-%x", C.peer_key);
	fd = syscall(SYS_mq_open, name, O_RDONLY | O_NONBLOCK, 0, NULL);
	if (fd >= 0)
		ESCAPED("mq_open(/%s) opened the other tenant's POSIX message queue", name);
	BLOCKED(errno, "mq_open(/%s): not in this IPC namespace", name);
}

static void chk_ipc_abstract_peer(void)
{
	char name[64];

	NEED(peer_key_s, "--peer-key");
	snprintf(name, sizeof name, "reeve-probe-%x", C.peer_key);
	if (connect_unix(name, 1) == 0)
		ESCAPED("connected to the other tenant's abstract socket @%s", name);
	BLOCKED(errno, "connect(@%s): abstract sockets are per network namespace", name);
}

static void chk_ipc_abstract_host(void)
{
	NEED(host_abstract, "--host-abstract");
	if (connect_unix(C.host_abstract, 1) == 0)
		ESCAPED("connected to the host's abstract socket @%s", C.host_abstract);
	BLOCKED(errno, "connect(@%s) to the host's abstract socket refused", C.host_abstract);
}

static void chk_ipc_unix_path_host(void)
{
	NEED(host_unix, "--host-unix");
	if (connect_unix(C.host_unix, 0) == 0)
		ESCAPED("connected to the host's Unix socket %s", C.host_unix);
	BLOCKED(errno, "connect(%s) to the host's Unix socket refused", C.host_unix);
}

static void chk_ipc_dev_shm_peer(void)
{
	char p[128];
	int c;

	NEED(peer_key_s, "--peer-key");
	snprintf(p, sizeof p, "/dev/shm/reeve-probe-%x", C.peer_key);
	c = holds_canary(p);
	if (c < 0)
		BLOCKED(errno, "%s: the other tenant's POSIX shared memory is not here", p);
	if (c == 1)
		ESCAPED("read the other tenant's POSIX shared memory %s", p);
	BLOCKED(0, "%s exists but is not the other tenant's", p);
}

/* ---------------------------------------------------------------- network */

static void tcp_check(const char *addr, const char *flag, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!addr)
		SKIP("no context: give %s", flag);
	if (parse_addr(addr, &ss, &len))
		FAILED(EINVAL, "cannot parse %s %s", flag, addr);
	if (try_connect((struct sockaddr *)&ss, len) == 0)
		ESCAPED("TCP connect to %s (%s) succeeded", addr, what);
	BLOCKED(errno, "TCP connect to %s (%s) failed", addr, what);
}

static void chk_net_host_port_loopback(void) { tcp_check(C.host_port, "--host-port", "a host port that is not a listed service"); }
static void chk_net_host_port_addr(void) { tcp_check(C.host_addr, "--host-addr", "a host address and port that is not a listed service"); }
static void chk_net_peer_addr(void) { tcp_check(C.peer_addr, "--peer-addr", "another tenant's service"); }

static void chk_net_raw_inet(void) { must_fail(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP), "socket(AF_INET, SOCK_RAW)"); }
static void chk_net_raw_inet6(void) { must_fail(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6), "socket(AF_INET6, SOCK_RAW)"); }
static void chk_net_packet(void) { must_fail(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003 /* ETH_P_ALL */)), "socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)"); }

static void chk_net_vsock(void)
{
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = 22};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		BLOCKED(errno, "socket(AF_VSOCK) refused: no channel to the hypervisor host");
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		ESCAPED("AF_VSOCK connected to the host (cid 2, port 22)");
	ESCAPED("socket(AF_VSOCK) created (connect to the host then failed: %s)", ename(errno));
}

static void chk_net_netlink_admin(void)
{
	struct {
		struct nlmsghdr n;
		struct ifinfomsg i;
		char attrs[128];
	} req;
	struct rtattr *ra, *li, *kind;
	char buf[4096];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};

	if (fd < 0)
		BLOCKED(errno, "socket(AF_NETLINK, NETLINK_ROUTE) refused");
	memset(&req, 0, sizeof req);
	req.n.nlmsg_type = RTM_NEWLINK;
	req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.n.nlmsg_seq = 1;
	req.i.ifi_family = AF_UNSPEC;
	req.n.nlmsg_len = NLMSG_LENGTH(sizeof req.i);
	ra = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.n.nlmsg_len));
	ra->rta_type = IFLA_IFNAME;
	ra->rta_len = RTA_LENGTH(strlen("reeveprobe0") + 1);
	strcpy(RTA_DATA(ra), "reeveprobe0");
	req.n.nlmsg_len = NLMSG_ALIGN(req.n.nlmsg_len) + RTA_ALIGN(ra->rta_len);
	li = (struct rtattr *)((char *)&req + req.n.nlmsg_len);
	li->rta_type = IFLA_LINKINFO;
	kind = RTA_DATA(li);
	kind->rta_type = IFLA_INFO_KIND;
	kind->rta_len = RTA_LENGTH(strlen("dummy") + 1);
	strcpy(RTA_DATA(kind), "dummy");
	li->rta_len = RTA_LENGTH(RTA_ALIGN(kind->rta_len));
	req.n.nlmsg_len += RTA_ALIGN(li->rta_len);
	if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
		FAILED(errno, "netlink send");
	ssize_t r = recv(fd, buf, sizeof buf, 0);
	if (r < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		FAILED(errno, "netlink reply");
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (h->nlmsg_type != NLMSG_ERROR)
		FAILED(0, "unexpected netlink reply type %d", h->nlmsg_type);
	int err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
	if (err == 0) {
		/* Remove the link again. */
		req.n.nlmsg_type = RTM_DELLINK;
		req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa);
		ESCAPED("RTM_NEWLINK created a network interface: CAP_NET_ADMIN is held");
	}
	if (err == EPERM)
		BLOCKED(err, "RTM_NEWLINK refused: no CAP_NET_ADMIN");
	ESCAPED_E(err, "RTM_NEWLINK passed the CAP_NET_ADMIN check and failed only later");
}

static void chk_net_host_iface(void)
{
	char buf[16384], p[128];

	NEED(host_iface, "--host-iface");
	snprintf(p, sizeof p, "/sys/class/net/%s", C.host_iface);
	if (read_file("/proc/net/dev", buf, sizeof buf) >= 0) {
		/* Lines look like "  eth0: 1234 ...": the name is what precedes the colon. */
		for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
			char *c = strchr(l, ':'), *nl = strchrnul(l, '\n');
			if (!c || c > nl)
				continue;
			while (*l == ' ' || *l == '\t')
				l++;
			if ((size_t)(c - l) == strlen(C.host_iface) && !strncmp(l, C.host_iface, c - l))
				ESCAPED("the host's interface %s is visible in /proc/net/dev",
					C.host_iface);
		}
	}
	if (access(p, F_OK) == 0)
		ESCAPED("the host's interface %s is visible as %s", C.host_iface, p);
	BLOCKED(0, "the host's interface %s is not in this network namespace", C.host_iface);
}

static void chk_net_tun(void)
{
	struct {
		char name[16];
		short flags;
		char pad[24];
	} ifr = {"reeveprobe1", IFF_TUN | IFF_NO_PI, {0}};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		BLOCKED(errno, "open(/dev/net/tun) refused");
	if (ioctl(fd, TUNSETIFF, &ifr) == 0)
		ESCAPED("created tun interface %s", ifr.name);
	BLOCKED(errno, "/dev/net/tun opened but TUNSETIFF refused");
}

/* ----------------------------------------------------------------- kernel */

static void chk_k_init_module(void) { must_be_denied(syscall(SYS_init_module, NULL, 0, ""), "init_module(empty image)", "CAP_SYS_MODULE"); }
static void chk_k_finit_module(void) { must_be_denied(syscall(SYS_finit_module, -1, "", 0), "finit_module(-1)", "CAP_SYS_MODULE"); }
static void chk_k_delete_module(void) { must_be_denied(syscall(SYS_delete_module, "reeve_probe_no_such_module", O_NONBLOCK), "delete_module(no such module)", "CAP_SYS_MODULE"); }
static void chk_k_kexec_load(void) { must_be_denied(syscall(SYS_kexec_load, 0UL, 17UL /* > KEXEC_SEGMENT_MAX */, NULL, 0UL), "kexec_load(17 segments)", "CAP_SYS_BOOT"); }
static void chk_k_kexec_file_load(void) { must_be_denied(syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, 0xffff0000UL), "kexec_file_load(invalid flags)", "CAP_SYS_BOOT"); }
static void chk_k_reboot(void) { must_be_denied(syscall(SYS_reboot, 0x1234, 0x5678, 0 /* CAD_OFF */, NULL), "reboot(wrong magic)", "CAP_SYS_BOOT"); }
static void chk_k_swapon(void) { must_be_denied(syscall(SYS_swapon, "/reeve-probe-no-such-swap", 0), "swapon(nonexistent file)", "CAP_SYS_ADMIN"); }
static void chk_k_swapoff(void) { must_be_denied(syscall(SYS_swapoff, "/reeve-probe-no-such-swap"), "swapoff(nonexistent file)", "CAP_SYS_ADMIN"); }
static void chk_k_acct(void) { must_be_denied(syscall(SYS_acct, "/reeve-probe-no-such-dir/acct"), "acct(nonexistent file)", "CAP_SYS_PACCT"); }
static void chk_k_syslog(void) { must_fail(syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0), "syslog(SIZE_BUFFER) (host kernel log)"); }
static void chk_k_ioperm(void) { must_fail(ioperm(0x80, 1, 1), "ioperm(0x80) (raw port I/O)"); }
static void chk_k_iopl(void) { must_fail(syscall(SYS_iopl, 3), "iopl(3) (raw port I/O)"); }
static void chk_k_core_pattern(void) { open_write_must_fail("/proc/sys/kernel/core_pattern", "host-wide sysctl (core_pattern runs a program as host root)"); }
static void chk_k_modprobe(void) { open_write_must_fail("/proc/sys/kernel/modprobe", "host-wide sysctl (modprobe path)"); }
static void chk_k_sysrq(void) { open_write_must_fail("/proc/sysrq-trigger", "magic SysRq trigger"); }
static void chk_k_uevent_helper(void) { open_write_must_fail("/sys/kernel/uevent_helper", "host uevent helper (runs as host root)"); }

static void chk_k_dev_kmsg(void)
{
	char b[256];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		BLOCKED(errno, "open(/dev/kmsg) refused");
	if (read(fd, b, sizeof b) > 0)
		ESCAPED("read the host kernel log from /dev/kmsg");
	BLOCKED(errno, "/dev/kmsg opened but reading refused");
}

/* Walk a tree and try O_WRONLY on every regular file that has a write bit. */
static void walk_write(const char *dir, int depth, int *tried, int *opened, char *first,
		       size_t n, int *err, int limit)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[1024];

	if (!d)
		return;
	while ((e = readdir(d)) && *tried < limit) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 8 && strcmp(p, "/sys/fs/cgroup"))
				walk_write(p, depth + 1, tried, opened, first, n, err, limit);
		} else if (S_ISREG(st.st_mode) && (st.st_mode & 0222)) {
			int fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			(*tried)++;
			if (fd >= 0) {
				if (!*opened)
					snprintf(first, n, "%s", p);
				(*opened)++;
				close(fd);
			} else {
				*err = errno;
			}
		}
	}
	closedir(d);
}

static void walk_check(const char *root, int limit)
{
	int tried = 0, opened = 0, err = 0;
	char first[1024] = "";

	walk_write(root, 0, &tried, &opened, first, sizeof first, &err, limit);
	if (opened)
		ESCAPED("%d of %d writable-mode files under %s open for writing (first: %s)", opened,
			tried, root, first);
	if (!tried)
		FAILED(errno, "no writable-mode file found under %s", root);
	BLOCKED(err, "all %d writable-mode files under %s refuse O_WRONLY", tried, root);
}

static void chk_k_proc_sys_walk(void) { walk_check("/proc/sys", 20000); }
static void chk_k_sys_walk(void) { walk_check("/sys", 30000); }

static void chk_k_keyctl(void)
{
	/* KEYCTL_GET_KEYRING_ID of KEY_SPEC_USER_KEYRING: uid 0's keyring is shared with the host. */
	must_fail(syscall(SYS_keyctl, 0, -4, 0), "keyctl(GET_KEYRING_ID, user keyring)");
}

static void chk_k_add_key(void)
{
	long id = syscall(SYS_add_key, "user", "reeve-probe", "x", 1, -4);

	if (id >= 0) {
		syscall(SYS_keyctl, 21 /* KEYCTL_INVALIDATE */, id);
		ESCAPED("add_key put a key into the user keyring (shared with the host's uid)");
	}
	BLOCKED(errno, "add_key(user keyring) refused");
}

static void chk_k_bpf(void)
{
	union bpf_attr a;

	memset(&a, 0, sizeof a);
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 4;
	a.max_entries = 1;
	must_fail(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a), "bpf(BPF_MAP_CREATE)");
}

static void chk_k_perf(void)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof a;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.disabled = 1;
	must_fail(syscall(SYS_perf_event_open, &a, -1, 0, -1, 0),
		  "perf_event_open(all processes on cpu 0)");
}

static void chk_k_userfaultfd(void) { must_fail(syscall(SYS_userfaultfd, O_CLOEXEC), "userfaultfd(kernel faults too)"); }

static void chk_k_io_uring(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof p);
	must_fail(syscall(SYS_io_uring_setup, 1, &p), "io_uring_setup (bypasses seccomp per operation)");
}

static void chk_k_clock_settime(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	/* Setting the clock to the value just read: a success moves it by microseconds. */
	must_fail(syscall(SYS_clock_settime, CLOCK_REALTIME, &t), "clock_settime(CLOCK_REALTIME)");
}

static void chk_k_settimeofday(void)
{
	struct timezone tz = {.tz_minuteswest = 10000}; /* out of range: EINVAL after the check */

	must_be_denied(syscall(SYS_settimeofday, NULL, &tz), "settimeofday(invalid timezone)",
		       "CAP_SYS_TIME");
}

static void chk_k_personality(void)
{
	must_fail(syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */),
		  "personality(ADDR_NO_RANDOMIZE) (turns off ASLR)");
}

static void unshare_check(int flag, const char *what)
{
	char buf[64];

	snprintf(buf, sizeof buf, "unshare(%s)", what);
	must_fail(unshare(flag), buf);
}

static void chk_k_unshare_user(void) { unshare_check(CLONE_NEWUSER, "CLONE_NEWUSER"); }
static void chk_k_unshare_mnt(void) { unshare_check(CLONE_NEWNS, "CLONE_NEWNS"); }
static void chk_k_unshare_net(void) { unshare_check(CLONE_NEWNET, "CLONE_NEWNET"); }
static void chk_k_unshare_pid(void) { unshare_check(CLONE_NEWPID, "CLONE_NEWPID"); }
static void chk_k_unshare_ipc(void) { unshare_check(CLONE_NEWIPC, "CLONE_NEWIPC"); }
static void chk_k_unshare_uts(void) { unshare_check(CLONE_NEWUTS, "CLONE_NEWUTS"); }
static void chk_k_unshare_cgroup(void) { unshare_check(CLONE_NEWCGROUP, "CLONE_NEWCGROUP"); }
static void chk_k_unshare_time(void) { unshare_check(CLONE_NEWTIME, "CLONE_NEWTIME"); }

static void chk_k_setns_own_mnt(void)
{
	int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		FAILED(errno, "open /proc/self/ns/mnt");
	must_fail(setns(fd, CLONE_NEWNS), "setns(own mount namespace) (resets the root)");
}

static void chk_k_clone_newuser(void)
{
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);

	if (pid == 0)
		syscall(SYS_exit_group, 0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	must_fail(pid, "clone(CLONE_NEWUSER)");
}

static void chk_k_clone3_newuser(void)
{
	struct clone_args a;
	long pid;

	memset(&a, 0, sizeof a);
	a.flags = CLONE_NEWUSER | CLONE_NEWNS;
	a.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &a, sizeof a);
	if (pid == 0)
		syscall(SYS_exit_group, 0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	must_fail(pid, "clone3(CLONE_NEWUSER|CLONE_NEWNS)");
}

static void chk_k_chroot(void) { must_fail(chroot("/"), "chroot(/) (first step of the chroot breakout)"); }

static void chk_k_pivot_root(void)
{
	if (chdir("/"))
		FAILED(errno, "chdir /");
	must_fail(syscall(SYS_pivot_root, ".", "."), "pivot_root(., .)");
}

static void chk_k_root_dotdot(void)
{
	struct stat a, b;

	if (stat("/", &a) || stat("/..", &b))
		FAILED(errno, "stat / or /..");
	if (!same_file(&a, &b))
		ESCAPED("/.. is not / : the root can be climbed out of");
	if (stat("/proc/self/root/..", &b) || !same_file(&a, &b))
		ESCAPED("/proc/self/root/.. is not /");
	BLOCKED(0, "/.. and /proc/self/root/.. are the root itself");
}

static void chk_k_fanotify(void) { must_fail(syscall(SYS_fanotify_init, 0x8 /* FAN_CLASS_CONTENT */, O_RDONLY), "fanotify_init(FAN_CLASS_CONTENT) (watch host files)"); }

static void chk_k_mount_proc(void)
{
	const char *d = scratch_dir();

	if (mount("proc", d, "proc", 0, NULL) == 0) {
		umount2(d, MNT_DETACH);
		ESCAPED("mounted a fresh procfs (no masked paths) on %s", d);
	}
	BLOCKED(errno, "mount(proc on %s) refused", d);
}

/* ---------------------------------------------------------------- cgroups */

static void chk_cg_write_limits(void)
{
	const char *files[] = {"memory.max", "pids.max", "cpu.max", "memory.high", "io.max",
			       "cgroup.max.descendants", "cgroup.max.depth",
			       "cgroup.subtree_control"};
	char p[256], buf[256], note[400] = "";
	int tried = 0, e = 0;

	for (unsigned i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "/sys/fs/cgroup/%s", files[i]);
		if (read_file(p, buf, sizeof buf) < 0)
			continue;
		tried++;
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			e = errno;
			continue;
		}
		/* Write the current value back: a success proves the limit can be changed. */
		if (write(fd, buf, strlen(buf)) >= 0)
			ESCAPED("%s is writable (its own value was written back)", p);
		snprintf(note, sizeof note, "%s opened for writing but the write-back failed", p);
		e = errno;
		close(fd);
	}
	if (!tried)
		BLOCKED(0, "no cgroup limit file is visible under /sys/fs/cgroup");
	if (note[0])
		BLOCKED(e, "%s", note);
	BLOCKED(e, "%d cgroup limit files visible, none opens for writing", tried);
}

static void chk_cg_mkdir(void)
{
	if (mkdir("/sys/fs/cgroup/reeve-probe", 0755) == 0) {
		rmdir("/sys/fs/cgroup/reeve-probe");
		ESCAPED("created cgroup /sys/fs/cgroup/reeve-probe");
	}
	BLOCKED(errno, "mkdir in /sys/fs/cgroup refused");
}

static void chk_cg_move(void)
{
	char p[600], pid[32];
	DIR *d;
	struct dirent *e;
	int tried = 0, err = 0;
	const char *dirs[64];
	static char names[64][300];
	int nd = 0;

	dirs[nd++] = "/sys/fs/cgroup";
	d = opendir("/sys/fs/cgroup");
	while (d && (e = readdir(d)) && nd < 64) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(names[nd], sizeof names[nd], "/sys/fs/cgroup/%s", e->d_name);
		if (!stat(names[nd], &st) && S_ISDIR(st.st_mode)) {
			dirs[nd] = names[nd];
			nd++;
		}
	}
	if (d)
		closedir(d);
	snprintf(pid, sizeof pid, "%d\n", getpid());
	for (int i = 0; i < nd; i++) {
		snprintf(p, sizeof p, "%s/cgroup.procs", dirs[i]);
		if (access(p, F_OK))
			continue;
		tried++;
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (write(fd, pid, strlen(pid)) > 0)
			ESCAPED("moved itself into cgroup %s", dirs[i]);
		err = errno;
		close(fd);
	}
	if (!tried)
		BLOCKED(0, "no cgroup.procs visible");
	BLOCKED(err, "writing its pid to %d cgroup.procs files refused", tried);
}

static void cg_walk(const char *dir, int depth, int *dirs, int *foreign, char *where, size_t n)
{
	char p[1024], buf[65536];
	DIR *d;
	struct dirent *e;

	if (*dirs > 2000)
		return;
	(*dirs)++;
	snprintf(p, sizeof p, "%s/cgroup.procs", dir);
	if (read_file(p, buf, sizeof buf) > 0) {
		for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
			int pid = atoi(l);
			char pp[64];
			snprintf(pp, sizeof pp, "/proc/%d", pid);
			if (pid == 0 || access(pp, F_OK)) {
				if (!*foreign)
					snprintf(where, n, "%s", p);
				(*foreign)++;
			}
		}
	}
	if (depth >= 6 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (!lstat(p, &st) && S_ISDIR(st.st_mode))
			cg_walk(p, depth + 1, dirs, foreign, where, n);
	}
	closedir(d);
}

static void chk_cg_see_foreign(void)
{
	int dirs = 0, foreign = 0;
	char where[1024] = "";

	cg_walk("/sys/fs/cgroup", 0, &dirs, &foreign, where, sizeof where);
	if (foreign)
		ESCAPED("%d processes outside this sandbox are listed in its cgroup tree (first in "
			"%s)", foreign, where);
	BLOCKED(0, "the %d visible cgroups hold only this sandbox's processes", dirs);
}

static void chk_cg_self_path(void)
{
	char buf[4096];

	if (read_file("/proc/self/cgroup", buf, sizeof buf) < 0)
		FAILED(errno, "read /proc/self/cgroup");
	for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		char *c = strchr(l, ':');
		c = c ? strchr(c + 1, ':') : NULL;
		if (c && !(c[1] == '/' && (c[2] == '\n' || c[2] == 0)))
			ESCAPED("/proc/self/cgroup shows a host cgroup path: %.*s",
				(int)(strchrnul(l, '\n') - l), l);
	}
	BLOCKED(0, "/proc/self/cgroup shows only / (cgroup namespace)");
}

static void chk_cg_v1_release_agent(void)
{
	const char *d = scratch_dir();

	if (mount("cgroup", d, "cgroup", 0, "rdma") == 0 ||
	    mount("cgroup", d, "cgroup", 0, "none,name=reeveprobe") == 0) {
		umount2(d, MNT_DETACH);
		ESCAPED("mounted a cgroup v1 hierarchy (release_agent runs as host root)");
	}
	BLOCKED(errno, "mount of a cgroup v1 hierarchy refused");
}

/* ------------------------------------------------------------- privileges */

/* Exec `bin --report-ids` and parse "euid=N capeff=HEX capprm=HEX". */
static int exec_report(const char *bin, int *euid, unsigned long long *eff, unsigned long long *prm)
{
	int p[2], st;
	char buf[256] = "";
	pid_t pid;
	ssize_t r;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execl(bin, bin, "--report-ids", (char *)NULL);
		dprintf(1, "execfail=%d\n", errno);
		_exit(127);
	}
	close(p[1]);
	r = read(p[0], buf, sizeof buf - 1);
	buf[r > 0 ? r : 0] = 0;
	close(p[0]);
	waitpid(pid, &st, 0);
	if (sscanf(buf, "execfail=%d", &st) == 1) {
		*euid = -1;
		errno = st;
		return 0;
	}
	if (sscanf(buf, "euid=%d capeff=%llx capprm=%llx", euid, eff, prm) != 3) {
		errno = ENOEXEC;
		return -1;
	}
	return 0;
}

static void exec_gain_check(const char *bin, const char *flag, const char *what, int need_suid)
{
	struct stat st;
	int euid;
	unsigned long long eff, prm, my_eff = status_hex("CapEff"), my_prm = status_hex("CapPrm");
	char x[64];

	if (!bin)
		SKIP("no context: give %s", flag);
	if (stat(bin, &st))
		FAILED(errno, "stat %s", bin);
	if (need_suid && !((st.st_mode & S_ISUID) && st.st_uid == 0))
		FAILED(0, "%s is not setuid root (mode %o, uid %d)", bin, st.st_mode & 07777,
		       st.st_uid);
	if (!need_suid && getxattr(bin, "security.capability", x, sizeof x) <= 0)
		FAILED(errno, "%s carries no security.capability", bin);
	if (exec_report(bin, &euid, &eff, &prm))
		FAILED(errno, "exec %s --report-ids gave no report", bin);
	if (euid == -1)
		BLOCKED(errno, "the kernel refused to exec %s (%s)", what,
			errno == EPERM ? "its file capabilities cannot be granted in full" : "exec failed");
	if (euid != (int)geteuid())
		ESCAPED("exec of %s changed euid %d -> %d", what, geteuid(), euid);
	if ((eff & ~my_eff) || (prm & ~my_prm))
		ESCAPED("exec of %s raised capabilities (eff %llx -> %llx, prm %llx -> %llx)", what,
			my_eff, eff, my_prm, prm);
	BLOCKED(0, "exec of %s kept euid %d and capabilities %llx (no_new_privs=%llu)", what, euid,
		eff, status_hex("NoNewPrivs"));
}

static void chk_priv_setuid(void) { exec_gain_check(C.suid_bin, "--suid-bin", "a setuid-root binary", 1); }
static void chk_priv_fcaps(void) { exec_gain_check(C.fcaps_bin, "--fcaps-bin", "a binary with file capabilities", 0); }
static void chk_priv_fcaps_wide(void) { exec_gain_check(C.fcaps_wide_bin, "--fcaps-wide-bin", "a binary with file capabilities beyond the bounding set", 0); }

static void chk_priv_ambient(void)
{
	must_fail(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0),
		  "prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN)");
}

static void capset_check(int which)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		FAILED(errno, "capget");
	if (which == 0) {
		d[0].permitted |= 1u << CAP_SYS_ADMIN;
		d[0].effective |= 1u << CAP_SYS_ADMIN;
		must_fail(syscall(SYS_capset, &h, d), "capset(+CAP_SYS_ADMIN permitted/effective)");
	} else {
		d[0].inheritable |= 1u << CAP_SYS_ADMIN;
		must_fail(syscall(SYS_capset, &h, d), "capset(+CAP_SYS_ADMIN inheritable)");
	}
}

static void chk_priv_capset_grow(void) { capset_check(0); }
static void chk_priv_capset_inh(void) { capset_check(1); }

static void chk_priv_setgroups(void)
{
	gid_t g = 6; /* disk */

	must_fail(setgroups(1, &g), "setgroups([6 (disk)])");
}

static void chk_priv_setuid_other(void)
{
	uid_t target = geteuid() == 0 ? 12345 : 0;
	char what[64];

	snprintf(what, sizeof what, "setresuid(%u) from euid %u", target, geteuid());
	/* Raw syscall: glibc's setresuid would broadcast to threads, irrelevant here. */
	must_fail(syscall(SYS_setresuid, target, target, target), what);
}

static void chk_priv_rlimit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		FAILED(errno, "getrlimit");
	if (r.rlim_max == RLIM_INFINITY)
		SKIP("RLIMIT_NOFILE has no hard limit to raise");
	r.rlim_max += 1;
	must_fail(setrlimit(RLIMIT_NOFILE, &r), "setrlimit(RLIMIT_NOFILE, hard+1)");
}

/* ------------------------------------------------------------------ CVEs */

static void chk_cve_5736_self_exe(void)
{
	int fd = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);

	if (fd >= 0)
		ESCAPED("/proc/self/exe opened for writing");
	BLOCKED(errno, "open(/proc/self/exe, O_WRONLY) refused");
}

/* Try to rewrite the first byte of /proc/<pid>/exe with its own value. 1 on success. */
static int rewrite_exe(int pid, char *what, size_t n)
{
	char p[64], link[256] = "";
	unsigned char b;
	int rfd, wfd, ok = 0;

	snprintf(p, sizeof p, "/proc/%d/exe", pid);
	ssize_t l = readlink(p, link, sizeof link - 1);
	link[l > 0 ? l : 0] = 0;
	wfd = open(p, O_WRONLY | O_CLOEXEC);
	if (wfd < 0)
		return 0;
	rfd = open(p, O_RDONLY | O_CLOEXEC);
	if (rfd >= 0 && pread(rfd, &b, 1, 0) == 1 && pwrite(wfd, &b, 1, 0) == 1)
		ok = 1;
	snprintf(what, n, "pid %d exe %s opened for writing%s", pid, link,
		 ok ? " and a byte rewritten" : " (the write itself failed)");
	if (rfd >= 0)
		close(rfd);
	close(wfd);
	return ok ? 1 : 2;
}

static void chk_cve_5736_exe_scan(void)
{
	static int pids[MAX_PIDS], seen[MAX_PIDS];
	int n, nseen = 0, others = 0, runtime = 0, opened_only = 0;
	char what[512] = "", link[256], p[64];
	struct timespec t0, t;

	n = visible_pids(pids, MAX_PIDS);
	for (int i = 0; i < n; i++)
		seen[nseen++] = pids[i];
	for (int i = 0; i < n; i++) {
		if (pids[i] == getpid())
			continue;
		others++;
		int r = rewrite_exe(pids[i], what, sizeof what);
		if (r == 1)
			ESCAPED("%s", what);
		if (r == 2)
			opened_only++;
	}
	if (C.race_ms > 0) {
		/* Watch processes entering the sandbox (the runtime's exec) and race for their exe. */
		if (C.data_dir) {
			snprintf(p, sizeof p, "%s/race-ready", C.data_dir);
			close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			if (C.data_dir) {
				snprintf(p, sizeof p, "%s/race-stop", C.data_dir);
				if (access(p, F_OK) == 0)
					break;
			}
			n = visible_pids(pids, MAX_PIDS);
			for (int i = 0; i < n; i++) {
				int known = 0;
				for (int j = 0; j < nseen; j++)
					known |= seen[j] == pids[i];
				if (known)
					continue;
				if (nseen < MAX_PIDS)
					seen[nseen++] = pids[i];
				others++;
				snprintf(p, sizeof p, "/proc/%d/exe", pids[i]);
				ssize_t l = readlink(p, link, sizeof link - 1);
				link[l > 0 ? l : 0] = 0;
				if (strstr(link, "memfd:") || strstr(link, "reevec") ||
				    strstr(link, "runc"))
					runtime++;
				/* Keep trying while the process lives: the runtime is there only briefly. */
				for (int k = 0; k < 200; k++) {
					int r = rewrite_exe(pids[i], what, sizeof what);
					if (r == 1)
						ESCAPED("exec race: %s", what);
					if (r == 2)
						opened_only++;
					if (kill(pids[i], 0))
						break;
				}
			}
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
			 C.race_ms);
	}
	if (opened_only)
		BLOCKED(0, "%d exe opened for writing but no byte could be written (%s)", opened_only,
			what);
	BLOCKED(0, "no exe of the %d other processes seen (%d showed the runtime) opens for "
		"writing%s", others, runtime, C.race_ms > 0 ? " during the exec race" : "");
}

static void chk_cve_21626_fds(void)
{
	char list[800] = "";

	for (int i = 0; i < n_start_fds; i++)
		if (start_fds[i] > 2)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%d->%s ",
				 start_fds[i], start_fd_target[i]);
	if (list[0])
		ESCAPED("file descriptors above 2 were inherited at start: %s", list);
	BLOCKED(0, "only fds 0-2 were open at start (%d fds)", n_start_fds);
}

static void chk_cve_21626_cwd(void)
{
	char buf[4096];
	struct stat root, cur, up;
	int fd, nfd, steps = 0;

	if (!getcwd(buf, sizeof buf))
		ESCAPED_E(errno, "getcwd failed: the working directory is outside the root");
	if (buf[0] != '/')
		ESCAPED("getcwd returned %s: the working directory is outside the root", buf);
	if (stat("/", &root))
		FAILED(errno, "stat /");
	fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		FAILED(errno, "open .");
	for (;;) {
		fstat(fd, &cur);
		if (same_file(&cur, &root))
			break;
		nfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (nfd < 0)
			FAILED(errno, "openat ..");
		fstat(nfd, &up);
		close(fd);
		fd = nfd;
		if (same_file(&up, &cur) || ++steps > 256)
			ESCAPED("walking .. from the cwd %s tops out at a directory that is not this "
				"root", buf);
	}
	BLOCKED(0, "cwd %s lies inside the root (%d steps up to /)", buf, steps);
}

static void chk_cve_30465_host_root(void)
{
	char buf[65536];
	unsigned ma, mi;

	NEED(host_root_dev, "--host-root-dev");
	if (sscanf(C.host_root_dev, "%u:%u", &ma, &mi) != 2)
		FAILED(EINVAL, "bad --host-root-dev %s", C.host_root_dev);
	if (read_file("/proc/self/mountinfo", buf, sizeof buf) < 0)
		FAILED(errno, "read mountinfo");
	for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		unsigned a, b;
		char root[512], mp[512];
		if (sscanf(l, "%*d %*d %u:%u %511s %511s", &a, &b, root, mp) == 4 && a == ma &&
		    b == mi && !strcmp(root, "/"))
			ESCAPED("the host's root file system (%u:%u /) is mounted at %s", a, b, mp);
	}
	BLOCKED(0, "no mount shows the root of the host's file system %u:%u", ma, mi);
}

static void chk_cve_31133_dev_null(void)
{
	struct stat st;
	struct statfs sf;
	int fd;

	if (lstat("/dev/null", &st))
		FAILED(errno, "lstat /dev/null");
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		ESCAPED("/dev/null is not the 1:3 character device (mode %o, rdev %u:%u)",
			st.st_mode, major(st.st_rdev), minor(st.st_rdev));
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && !fstatfs(fd, &sf) && sf.f_type == PROC_SUPER_MAGIC)
		ESCAPED("/dev/null opens a procfs file");
	BLOCKED(0, "/dev/null is the real 1:3 character device");
}

static void chk_cve_31133_masked(void)
{
	static const char *def = "/proc/acpi,/proc/asound,/proc/kcore,/proc/keys,"
				 "/proc/latency_stats,/proc/timer_list,/proc/timer_stats,"
				 "/proc/sched_debug,/sys/firmware,/proc/scsi,"
				 "/sys/devices/virtual/powercap";
	char list[2048], *save, *p, f[600];
	int n = 0, absent = 0;

	snprintf(list, sizeof list, "%s", C.masked ? C.masked : def);
	for (p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		struct stat st;
		struct statfs sf;
		if (lstat(p, &st)) {
			absent++;
			continue;
		}
		n++;
		if (S_ISCHR(st.st_mode)) {
			if (major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
				ESCAPED("masked %s is char device %u:%u, not /dev/null", p,
					major(st.st_rdev), minor(st.st_rdev));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(p);
			struct dirent *e;
			int entries = 0;
			while (d && (e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					entries++;
			if (d)
				closedir(d);
			if (entries)
				ESCAPED("masked directory %s is not masked (%d entries)", p, entries);
			snprintf(f, sizeof f, "%s/reeve-probe", p);
			int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
			if (fd >= 0) {
				close(fd);
				unlink(f);
				ESCAPED("masked directory %s is writable", p);
			}
			continue;
		}
		statfs(p, &sf);
		ESCAPED("masked %s is a %s (fs magic %lx), not masked", p,
			S_ISLNK(st.st_mode) ? "symlink" : "readable file", (long)sf.f_type);
	}
	BLOCKED(0, "%d masked paths are /dev/null or empty read-only dirs, %d absent", n, absent);
}

static void chk_cve_52565_console(void)
{
	struct stat st;
	struct statfs sf;

	if (lstat("/dev/console", &st))
		BLOCKED(errno, "no /dev/console (no terminal given)");
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 && !statfs("/dev/console", &sf) &&
	    sf.f_type == DEVPTS_SUPER_MAGIC)
		BLOCKED(0, "/dev/console is a devpts node (136:%u)", minor(st.st_rdev));
	ESCAPED("/dev/console is not a devpts pty (mode %o, rdev %u:%u)", st.st_mode,
		major(st.st_rdev), minor(st.st_rdev));
}

static void chk_cve_52881_proc_attr(void)
{
	const char *attrs[] = {"current", "exec", "fscreate", "keycreate", "sockcreate",
			       "apparmor/current", "apparmor/exec"};
	char p[128], buf[65536];
	struct statfs sf;
	int fd, checked = 0;

	if (read_file("/proc/self/mountinfo", buf, sizeof buf) > 0)
		for (char *l = buf; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
			char mp[512];
			if (sscanf(l, "%*d %*d %*s %*s %511s", mp) == 1 &&
			    (!strncmp(mp, "/proc/self", 10) || !strncmp(mp, "/proc/thread-self", 17) ||
			     (strstr(mp, "/attr") && !strncmp(mp, "/proc/", 6))))
				ESCAPED("a mount lies over %s: writes to /proc/self/attr can be "
					"redirected", mp);
		}
	for (unsigned i = 0; i < sizeof attrs / sizeof *attrs; i++) {
		snprintf(p, sizeof p, "/proc/self/attr/%s", attrs[i]);
		if (statfs(p, &sf))
			continue;
		checked++;
		if (sf.f_type != PROC_SUPER_MAGIC)
			ESCAPED("%s is not on procfs (magic %lx)", p, (long)sf.f_type);
	}
	fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "reeve-probe-bogus-label", 23) == 23)
			ESCAPED("a bogus LSM label was accepted by /proc/self/attr/exec");
		int e = errno;
		close(fd);
		BLOCKED(e, "%d attr files are genuine procfs; label write refused", checked);
	}
	BLOCKED(errno, "%d attr files are genuine procfs; /proc/self/attr/exec not writable",
		checked);
}

static void chk_cve_52881_proc_sys(void)
{
	struct statfs sf;
	int fd;

	if (statfs("/proc/sys/kernel", &sf))
		FAILED(errno, "statfs /proc/sys/kernel");
	if (sf.f_type != PROC_SUPER_MAGIC)
		ESCAPED("/proc/sys is not procfs (magic %lx): sysctl writes can be redirected",
			(long)sf.f_type);
	fd = open("/proc/sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		ESCAPED("/proc/sys/kernel/core_pattern opened for writing");
	BLOCKED(errno, "/proc/sys is genuine procfs and refuses writes%s",
		(sf.f_flags & ST_RDONLY) ? " (read-only mount)" : "");
}

static void chk_cve_29162_caps(void)
{
	unsigned long long inh = status_hex("CapInh"), amb = status_hex("CapAmb");

	if (inh == ~0ULL || amb == ~0ULL)
		FAILED(errno, "read CapInh/CapAmb from /proc/self/status");
	if (inh || amb)
		ESCAPED("CapInh=%016llx CapAmb=%016llx: file capabilities can be inherited", inh, amb);
	BLOCKED(0, "CapInh and CapAmb are 0");
}

static void chk_cve_5226_tiocsti(void)
{
	char c = ' ';
	int fd = 0, m;

	if (!isatty(0)) {
		/* No terminal on stdin: make a pty our controlling terminal and try there. */
		m = posix_openpt(O_RDWR | O_NOCTTY);
		if (m < 0)
			BLOCKED(errno, "stdin is no tty and no pty can be made (posix_openpt)");
		if (grantpt(m) || unlockpt(m))
			FAILED(errno, "unlockpt");
		setsid();
		fd = open(ptsname(m), O_RDWR);
		if (fd < 0)
			FAILED(errno, "open %s", ptsname(m));
	}
	if (ioctl(fd, TIOCSTI, &c) == 0)
		ESCAPED("TIOCSTI pushed input into the %s (a host terminal on stdin would run it)",
			fd == 0 ? "terminal on stdin" : "sandbox's own controlling pty");
	BLOCKED(errno, "ioctl(TIOCSTI) refused on %s", fd == 0 ? "stdin" : "a controlling pty");
}

/* ------------------------------------------------------------------ table */

struct check {
	const char *name;
	const char *attempt;
	void (*fn)(void);
};

static const struct check CHECKS[] = {
	{"files.abs_path_other_tenant", "open another tenant's secret by its absolute host path", chk_files_abs_path},
	{"files.abs_dir_other_tenant", "list another tenant's data dir by its absolute host path", chk_files_abs_dir},
	{"files.proc_pid_root_other_tenant", "read the other tenant's secret through /proc/<peer pid>/root", chk_files_proc_peer_root},
	{"files.proc_root_scan", "every visible /proc/<pid>/root must be this root and not lead to the other tenant", chk_files_proc_root_scan},
	{"files.symlink_in_data_abs", "plant an absolute symlink to the other tenant's file in the data dir and read through it", chk_files_symlink_abs},
	{"files.symlink_in_data_climb", "plant a ../../ climbing symlink to the other tenant's file in the data dir", chk_files_symlink_climb},
	{"files.hardlink_runtime_in_data", "hard-link a runtime file into the data dir", chk_files_hardlink_runtime},
	{"files.hardlink_layer1_in_data", "hard-link a Layer 1 config file into the data dir", chk_files_hardlink_layer1},
	{"files.hardlink_rootfs_in_data", "hard-link a root file system file into the data dir", chk_files_hardlink_rootfs},
	{"files.open_by_handle_at", "open the host file system's root by handle (shocker)", chk_files_open_by_handle},
	{"files.mount_tmpfs", "mount a tmpfs", chk_files_mount_tmpfs},
	{"files.mount_proc", "mount a fresh procfs without the masks", chk_k_mount_proc},
	{"files.remount_root_rw", "remount / read-write", chk_files_remount_root_rw},
	{"files.bind_mount_root", "bind-mount / elsewhere", chk_files_bind_mount},
	{"files.umount_runtime", "unmount the read-only runtime", chk_files_umount_runtime},
	{"files.fsopen", "create a file system context with the new mount API", chk_files_fsopen},
	{"files.open_tree", "clone the mount tree with open_tree", chk_files_open_tree},
	{"files.block_devices", "open any block device node in /dev", chk_files_block_devices},
	{"files.mknod_block", "mknod the host disk's block device and open it", chk_files_mknod_block},
	{"files.mknod_char_mem", "mknod /dev/mem (1:1) and open it", chk_files_mknod_mem},
	{"files.dev_mem_disk", "open /dev/mem, /dev/kmem, /dev/port or a host disk", chk_files_dev_mem},
	{"files.write_rootfs", "create a file in the read-only root", chk_files_write_rootfs},
	{"files.runtime_write", "open a runtime file for writing", chk_files_runtime_write},
	{"files.runtime_create", "create a file in the runtime dir", chk_files_runtime_create},
	{"files.runtime_chmod", "chmod a runtime file", chk_files_runtime_chmod},
	{"files.runtime_remount_rw", "remount the runtime read-write", chk_files_runtime_remount},
	{"files.layer1_write", "open a Layer 1 config file for writing", chk_files_layer1_write},
	{"files.layer1_create", "create a file in the Layer 1 dir", chk_files_layer1_create},
	{"files.layer1_chmod", "chmod a Layer 1 config file", chk_files_layer1_chmod},
	{"files.layer1_remount_rw", "remount the Layer 1 config read-write", chk_files_layer1_remount},

	{"proc.see_other_tenant", "find the other tenant's process in /proc", chk_proc_see_peer},
	{"proc.foreign_namespaces", "find a visible process in another namespace", chk_proc_foreign_ns},
	{"proc.signal_other_tenant", "kill(<peer pid>, 0)", chk_proc_signal_peer},
	{"proc.kill_all", "kill(-1, 0) must reach only this sandbox's processes", chk_proc_kill_all},
	{"proc.ptrace_other_tenant", "ptrace(PTRACE_SEIZE) the other tenant's process", chk_proc_ptrace_peer},
	{"proc.vm_readv_other_tenant", "process_vm_readv the other tenant's memory", chk_proc_vm_readv_peer},
	{"proc.pidfd_other_tenant", "pidfd_open the other tenant's process", chk_proc_pidfd_peer},
	{"proc.mem_other_tenant", "open /proc/<peer pid>/mem", chk_proc_peer_mem},
	{"proc.setns_other_tenant", "join the other tenant's network namespace", chk_proc_setns_peer},

	{"ipc.sysv_shm_other_tenant", "shmget the other tenant's SysV shared memory key", chk_ipc_shm_peer},
	{"ipc.sysv_msg_other_tenant", "msgget the other tenant's SysV message queue key", chk_ipc_msg_peer},
	{"ipc.sysv_sem_other_tenant", "semget the other tenant's SysV semaphore key", chk_ipc_sem_peer},
	{"ipc.sysvipc_listing", "list SysV IPC objects this sandbox did not make", chk_ipc_sysvipc_listing},
	{"ipc.mqueue_other_tenant", "mq_open the other tenant's POSIX message queue", chk_ipc_mq_peer},
	{"ipc.abstract_other_tenant", "connect to the other tenant's abstract Unix socket", chk_ipc_abstract_peer},
	{"ipc.abstract_host", "connect to a host abstract Unix socket", chk_ipc_abstract_host},
	{"ipc.unix_path_host", "connect to a host Unix socket by path", chk_ipc_unix_path_host},
	{"ipc.dev_shm_other_tenant", "read the other tenant's /dev/shm file", chk_ipc_dev_shm_peer},

	{"net.host_port_loopback", "TCP connect to a host port on 127.0.0.1 that is not a listed service", chk_net_host_port_loopback},
	{"net.host_port_address", "TCP connect to a host port on a host address", chk_net_host_port_addr},
	{"net.other_tenant_address", "TCP connect to the other tenant's service", chk_net_peer_addr},
	{"net.raw_inet", "open a raw IPv4 socket", chk_net_raw_inet},
	{"net.raw_inet6", "open a raw IPv6 socket", chk_net_raw_inet6},
	{"net.packet", "open a packet socket", chk_net_packet},
	{"net.vsock_host", "open an AF_VSOCK socket to the hypervisor host", chk_net_vsock},
	{"net.netlink_admin", "create a network interface over rtnetlink", chk_net_netlink_admin},
	{"net.host_interface", "see a host network interface", chk_net_host_iface},
	{"net.tun", "create a tun interface", chk_net_tun},

	{"kernel.init_module", "load a kernel module", chk_k_init_module},
	{"kernel.finit_module", "load a kernel module from an fd", chk_k_finit_module},
	{"kernel.delete_module", "unload a kernel module", chk_k_delete_module},
	{"kernel.kexec_load", "load a new kernel", chk_k_kexec_load},
	{"kernel.kexec_file_load", "load a new kernel from a file", chk_k_kexec_file_load},
	{"kernel.reboot", "reboot the machine", chk_k_reboot},
	{"kernel.swapon", "enable swap on a file", chk_k_swapon},
	{"kernel.swapoff", "disable swap", chk_k_swapoff},
	{"kernel.sysctl_core_pattern", "open /proc/sys/kernel/core_pattern for writing", chk_k_core_pattern},
	{"kernel.sysctl_modprobe", "open /proc/sys/kernel/modprobe for writing", chk_k_modprobe},
	{"kernel.proc_sys_walk", "open every writable-mode file under /proc/sys for writing", chk_k_proc_sys_walk},
	{"kernel.sysrq_trigger", "open /proc/sysrq-trigger for writing", chk_k_sysrq},
	{"kernel.sys_uevent_helper", "open /sys/kernel/uevent_helper for writing", chk_k_uevent_helper},
	{"kernel.sys_walk", "open every writable-mode file under /sys for writing", chk_k_sys_walk},
	{"kernel.keyctl", "reach the user keyring shared with the host uid", chk_k_keyctl},
	{"kernel.add_key", "add a key to the user keyring", chk_k_add_key},
	{"kernel.bpf", "create a BPF map", chk_k_bpf},
	{"kernel.perf_event_open", "open a system-wide perf event", chk_k_perf},
	{"kernel.userfaultfd", "create a userfaultfd", chk_k_userfaultfd},
	{"kernel.io_uring", "create an io_uring", chk_k_io_uring},
	{"kernel.clock_settime", "set the host clock", chk_k_clock_settime},
	{"kernel.settimeofday_tz", "set the host timezone", chk_k_settimeofday},
	{"kernel.acct", "switch process accounting", chk_k_acct},
	{"kernel.personality", "turn off ASLR with personality", chk_k_personality},
	{"kernel.syslog", "read the host kernel log with syslog(2)", chk_k_syslog},
	{"kernel.dev_kmsg", "read the host kernel log from /dev/kmsg", chk_k_dev_kmsg},
	{"kernel.ioperm", "get raw I/O port access", chk_k_ioperm},
	{"kernel.iopl", "raise the I/O privilege level", chk_k_iopl},
	{"kernel.fanotify_init", "watch file accesses with fanotify", chk_k_fanotify},
	{"kernel.unshare_user", "create a user namespace", chk_k_unshare_user},
	{"kernel.unshare_mnt", "create a mount namespace", chk_k_unshare_mnt},
	{"kernel.unshare_net", "create a network namespace", chk_k_unshare_net},
	{"kernel.unshare_pid", "create a pid namespace", chk_k_unshare_pid},
	{"kernel.unshare_ipc", "create an IPC namespace", chk_k_unshare_ipc},
	{"kernel.unshare_uts", "create a UTS namespace", chk_k_unshare_uts},
	{"kernel.unshare_cgroup", "create a cgroup namespace", chk_k_unshare_cgroup},
	{"kernel.unshare_time", "create a time namespace", chk_k_unshare_time},
	{"kernel.setns_own_mnt", "setns into its own mount namespace (resets the root)", chk_k_setns_own_mnt},
	{"kernel.clone_newuser", "clone(CLONE_NEWUSER)", chk_k_clone_newuser},
	{"kernel.clone3_newuser", "clone3(CLONE_NEWUSER|CLONE_NEWNS)", chk_k_clone3_newuser},
	{"kernel.chroot", "chroot (start of the chroot breakout)", chk_k_chroot},
	{"kernel.pivot_root", "pivot_root(., .)", chk_k_pivot_root},
	{"kernel.root_dotdot", "climb above / through .. and /proc/self/root", chk_k_root_dotdot},

	{"cgroup.write_own_limits", "write its own cgroup limits", chk_cg_write_limits},
	{"cgroup.mkdir", "create a cgroup", chk_cg_mkdir},
	{"cgroup.move", "move itself into another cgroup", chk_cg_move},
	{"cgroup.see_foreign_processes", "find processes of other sandboxes in the cgroup tree", chk_cg_see_foreign},
	{"cgroup.self_path", "read the host's cgroup path in /proc/self/cgroup", chk_cg_self_path},
	{"cgroup.v1_release_agent", "mount a cgroup v1 hierarchy (release_agent escape)", chk_cg_v1_release_agent},

	{"priv.setuid_binary", "exec a setuid-root binary under no_new_privs", chk_priv_setuid},
	{"priv.file_caps_binary", "exec a binary with file capabilities under no_new_privs", chk_priv_fcaps},
	{"priv.file_caps_beyond_bounding", "exec a binary with file capabilities outside the bounding set", chk_priv_fcaps_wide},
	{"priv.ambient_raise", "raise CAP_SYS_ADMIN into the ambient set", chk_priv_ambient},
	{"priv.capset_grow", "capset CAP_SYS_ADMIN into permitted/effective", chk_priv_capset_grow},
	{"priv.capset_inheritable", "capset CAP_SYS_ADMIN into inheritable", chk_priv_capset_inh},
	{"priv.setgroups", "join group disk with setgroups", chk_priv_setgroups},
	{"priv.setuid_other", "change to another uid", chk_priv_setuid_other},
	{"priv.rlimit_raise", "raise a hard rlimit", chk_priv_rlimit},

	{"cve_2019_5736.self_exe_write", "open /proc/self/exe for writing", chk_cve_5736_self_exe},
	{"cve_2019_5736.runtime_exe_write", "rewrite the exe of any other visible process (the runtime during exec)", chk_cve_5736_exe_scan},
	{"cve_2024_21626.leaked_fds", "no fd above 2 inherited at start", chk_cve_21626_fds},
	{"cve_2024_21626.cwd_outside_root", "the working directory must lie inside the root", chk_cve_21626_cwd},
	{"cve_2021_30465.host_root_mounted", "find the host's root file system mounted in the sandbox", chk_cve_30465_host_root},
	{"cve_2025_31133.dev_null", "/dev/null must be the real 1:3 device", chk_cve_31133_dev_null},
	{"cve_2025_31133.masked_paths", "every masked path must be /dev/null or an empty read-only dir", chk_cve_31133_masked},
	{"cve_2025_52565.dev_console", "/dev/console must be a devpts pty or absent", chk_cve_52565_console},
	{"cve_2025_52881.proc_attr", "/proc/self/attr must be genuine procfs and refuse bogus labels", chk_cve_52881_proc_attr},
	{"cve_2025_52881.proc_sys", "/proc/sys must be genuine procfs and refuse writes", chk_cve_52881_proc_sys},
	{"cve_2022_29162.inheritable_caps", "CapInh and CapAmb must be empty", chk_cve_29162_caps},
	{"cve_2017_5226.tiocsti", "push input into a terminal with TIOCSTI", chk_cve_5226_tiocsti},
};

#define N_CHECKS (sizeof CHECKS / sizeof *CHECKS)

/* ------------------------------------------------------------------ output */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int selected(const char *name, const char *only)
{
	char list[4096], *save, *p;

	if (!only)
		return 1;
	snprintf(list, sizeof list, "%s", only);
	for (p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		size_t l = strlen(p);
		if (!strcmp(p, name) || (l && p[l - 1] == '.' && !strncmp(p, name, l)))
			return 1;
	}
	return 0;
}

static void run_check(const struct check *c, struct result *out)
{
	int p[2], st;
	pid_t pid;
	ssize_t got = 0, r;

	memset(out, 0, sizeof *out);
	if (pipe2(p, O_CLOEXEC)) {
		out->verdict = V_ERROR;
		out->err = errno;
		snprintf(out->why, sizeof out->why, "pipe failed");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		out->verdict = V_ERROR;
		out->err = errno;
		snprintf(out->why, sizeof out->why, "fork failed");
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		static struct result res;
		close(p[0]);
		R = &res;
		alarm(CHECK_TIMEOUT_S);
		c->fn();
		if (!res.set)
			set_result(V_ERROR, 0, "the check ended without a verdict");
		if (write(p[1], &res, sizeof res) != sizeof res)
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	while (got < (ssize_t)sizeof *out && (r = read(p[0], (char *)out + got, sizeof *out - got)) > 0)
		got += r;
	close(p[0]);
	waitpid(pid, &st, 0);
	if (got != sizeof *out) {
		memset(out, 0, sizeof *out);
		out->verdict = V_ERROR;
		if (WIFSIGNALED(st))
			snprintf(out->why, sizeof out->why, "the check died of signal %d%s",
				 WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (timed out)" : "");
		else
			snprintf(out->why, sizeof out->why, "the check exited %d without a verdict",
				 WEXITSTATUS(st));
	}
}

/* ----------------------------------------------------------- peer tenant */

static int peer_serve(void)
{
	char name[64], path[512];
	int fd, port = C.listen_s ? atoi(C.listen_s) : 0;
	const char *canary = C.peer_canary ? C.peer_canary : "reeve-probe-peer";

	if (!C.peer_key_s) {
		fprintf(stderr, "--peer-serve needs --peer-key\n");
		return 2;
	}
	int shm = shmget(C.peer_key, 4096, IPC_CREAT | 0666);
	if (shm >= 0) {
		char *m = shmat(shm, NULL, 0);
		if (m != (void *)-1)
			snprintf(m, 4096, "%s", canary);
	}
	int mq = msgget(C.peer_key, IPC_CREAT | 0666);
	struct {
		long t;
		char b[64];
	} msg = {1, ""};
	snprintf(msg.b, sizeof msg.b, "%s", canary);
	if (mq >= 0)
		msgsnd(mq, &msg, strlen(msg.b) + 1, IPC_NOWAIT);
	int sem = semget(C.peer_key, 1, IPC_CREAT | 0666);
	snprintf(name, sizeof name, "reeve-probe-%x", C.peer_key);
	long q = syscall(SYS_mq_open, name, O_CREAT | O_RDWR, 0666, NULL);
	snprintf(path, sizeof path, "/dev/shm/reeve-probe-%x", C.peer_key);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, canary, strlen(canary)) < 0)
			perror("write /dev/shm");
		close(fd);
	}
	int us = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un ua = {.sun_family = AF_UNIX};
	snprintf(ua.sun_path + 1, sizeof ua.sun_path - 1, "%s", name);
	int ub = bind(us, (struct sockaddr *)&ua,
		      offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	if (ub == 0)
		listen(us, 8);
	int ts = -1, tb = -1;
	if (port) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
		int one = 1;
		ts = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(ts, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		tb = bind(ts, (struct sockaddr *)&a, sizeof a);
		if (tb == 0)
			listen(ts, 8);
	}
	printf("peer: shm=%d msg=%d sem=%d mq=%ld abstract=%d tcp=%d\n", shm, mq, sem, q, ub, tb);
	fflush(stdout);
	if (C.data_dir) {
		snprintf(path, sizeof path, "%s/ready", C.data_dir);
		close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	}
	for (;;)
		pause();
}

/* ----------------------------------------------------------------- main */

static void record_start_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int dfd = d ? dirfd(d) : -1;
	char p[64];

	while (d && (e = readdir(d)) && n_start_fds < 256) {
		if (!is_pid_name(e->d_name) || atoi(e->d_name) == dfd)
			continue;
		start_fds[n_start_fds] = atoi(e->d_name);
		snprintf(p, sizeof p, "/proc/self/fd/%d", start_fds[n_start_fds]);
		ssize_t r = readlink(p, start_fd_target[n_start_fds], 255);
		start_fd_target[n_start_fds][r > 0 ? r : 0] = 0;
		n_start_fds++;
	}
	if (d)
		closedir(d);
}

struct opt {
	const char *flag;
	const char **dst;
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	int json = 0, list = 0, serve = 0, counts[4] = {0};
	struct opt opts[] = {
		{"--peer-file", &C.peer_file},       {"--peer-inner", &C.peer_inner},
		{"--peer-canary", &C.peer_canary},   {"--peer-marker", &C.peer_marker},
		{"--peer-key", &C.peer_key_s},       {"--peer-addr", &C.peer_addr},
		{"--peer-pid", &C.peer_pid_s},       {"--host-port", &C.host_port},
		{"--host-addr", &C.host_addr},       {"--host-abstract", &C.host_abstract},
		{"--host-unix", &C.host_unix},       {"--host-root-dev", &C.host_root_dev},
		{"--host-iface", &C.host_iface},     {"--runtime-dir", &C.runtime_dir},
		{"--layer1-dir", &C.layer1_dir},     {"--data-dir", &C.data_dir},
		{"--suid-bin", &C.suid_bin},         {"--fcaps-bin", &C.fcaps_bin},
		{"--fcaps-wide-bin", &C.fcaps_wide_bin},
		{"--masked", &C.masked},             {"--race-ms", &C.race_ms_s},
		{"--listen", &C.listen_s},           {"--only", &only},
	};
	const int nopts = sizeof opts / sizeof *opts;

	/* Before anything opens a file: what the runtime left open. */
	record_start_fds();

	for (int i = 0; i < nopts; i++) {
		/* --peer-file -> REEVE_PROBE_PEER_FILE */
		char env[64] = "REEVE_PROBE_";
		size_t k = strlen(env);
		for (const char *f = opts[i].flag + 2; *f && k < sizeof env - 1; f++)
			env[k++] = *f == '-' ? '_' : (char)toupper((unsigned char)*f);
		env[k] = 0;
		if (getenv(env))
			*opts[i].dst = getenv(env);
	}
	for (int i = 1; i < argc; i++) {
		int known = 0;
		if (!strcmp(argv[i], "--json")) {
			json = 1;
			continue;
		}
		if (!strcmp(argv[i], "--list")) {
			list = 1;
			continue;
		}
		if (!strcmp(argv[i], "--peer-serve")) {
			serve = 1;
			continue;
		}
		if (!strcmp(argv[i], "--marker") && i + 1 < argc) {
			i++; /* only there to be seen in the command line */
			continue;
		}
		if (!strcmp(argv[i], "--report-ids")) {
			printf("euid=%d capeff=%llx capprm=%llx\n", geteuid(), status_hex("CapEff"),
			       status_hex("CapPrm"));
			return 0;
		}
		for (int j = 0; j < nopts; j++)
			if (!strcmp(argv[i], opts[j].flag) && i + 1 < argc) {
				*opts[j].dst = argv[++i];
				known = 1;
			}
		if (!known) {
			fprintf(stderr, "reeve-probe: unknown or incomplete option %s\n", argv[i]);
			return 2;
		}
	}
	if (C.peer_pid_s)
		C.peer_pid = atoi(C.peer_pid_s);
	if (C.peer_key_s)
		C.peer_key = (key_t)strtoul(C.peer_key_s, NULL, 0);
	if (C.race_ms_s)
		C.race_ms = atoi(C.race_ms_s);
	if (serve)
		return peer_serve();
	if (list) {
		for (size_t i = 0; i < N_CHECKS; i++)
			printf("%s\t%s\n", CHECKS[i].name, CHECKS[i].attempt);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < N_CHECKS; i++) {
		struct result res;
		if (!selected(CHECKS[i].name, only))
			continue;
		run_check(&CHECKS[i], &res);
		counts[res.verdict]++;
		if (json) {
			printf("{\"check\":");
			json_str(stdout, CHECKS[i].name);
			printf(",\"verdict\":\"%s\"", VNAME[res.verdict]);
			if (res.err)
				printf(",\"errno\":\"%s\"", ename(res.err));
			printf(",\"reason\":");
			json_str(stdout, res.why);
			printf(",\"attempt\":");
			json_str(stdout, CHECKS[i].attempt);
			printf("}\n");
		} else {
			printf("%-8s %-40s %-8s %s\n", VNAME[res.verdict], CHECKS[i].name,
			       res.err ? ename(res.err) : "", res.why);
		}
		fflush(stdout);
	}
	if (json)
		printf("{\"summary\":{\"blocked\":%d,\"escaped\":%d,\"error\":%d,\"skipped\":%d}}\n",
		       counts[V_BLOCKED], counts[V_ESCAPED], counts[V_ERROR], counts[V_SKIPPED]);
	else
		printf("summary: blocked %d, escaped %d, error %d, skipped %d\n", counts[V_BLOCKED],
		       counts[V_ESCAPED], counts[V_ERROR], counts[V_SKIPPED]);
	return counts[V_ESCAPED] ? 1 : 0;
}
