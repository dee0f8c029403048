/*
 * Syscall probe for reeve's end-to-end tests, built with `gcc -static` at test time and run as a
 * container's process. It calls each syscall of interest directly with syscall(2), in a forked
 * child so that a call the sandbox wrongly allows cannot change the probe itself, with harmless
 * arguments: every call here either fails on its arguments or is a no-op when allowed, and the
 * sandbox must turn it into EPERM (ENOSYS for clone3) before the kernel looks at them.
 *
 * Output: one `name=RESULT` line per syscall, RESULT being OK or the errno's name (EPERM...).
 * With the argument `segv`, the probe dies of a real SIGSEGV instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

static long call(const char *name)
{
	int p[2];
	char c = 'x';

	if (!strcmp(name, "mount"))
		return syscall(SYS_mount, "none", "/reeve-e2e-nonexistent", "tmpfs", 0UL, NULL);
	if (!strcmp(name, "umount2"))
		return syscall(SYS_umount2, "/reeve-e2e-nonexistent", 0);
	if (!strcmp(name, "unshare"))
		return syscall(SYS_unshare, CLONE_NEWUSER);
	if (!strcmp(name, "setns"))
		return syscall(SYS_setns, -1, 0);
	if (!strcmp(name, "keyctl"))
		return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
	if (!strcmp(name, "add_key"))
		return syscall(SYS_add_key, "reeve-e2e-no-such-type", "d", "p", 1, -2);
	if (!strcmp(name, "ptrace"))
		return syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
	if (!strcmp(name, "bpf"))
		return syscall(SYS_bpf, -1, NULL, 0);
	if (!strcmp(name, "perf_event_open"))
		return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	if (!strcmp(name, "userfaultfd"))
		return syscall(SYS_userfaultfd, 0);
	if (!strcmp(name, "io_uring_setup"))
		return syscall(SYS_io_uring_setup, 0, NULL);
	if (!strcmp(name, "kexec_load"))
		return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xffffffffUL);
	if (!strcmp(name, "init_module"))
		return syscall(SYS_init_module, NULL, 0UL, "");
	if (!strcmp(name, "reboot"))
		return syscall(SYS_reboot, 0, 0, 0, NULL); /* bad magic: EINVAL if ever allowed */
	if (!strcmp(name, "swapon"))
		return syscall(SYS_swapon, "/reeve-e2e-nonexistent", 0);
	if (!strcmp(name, "clock_settime"))
		return syscall(SYS_clock_settime, CLOCK_REALTIME, NULL); /* EFAULT if allowed */
	if (!strcmp(name, "acct"))
		return syscall(SYS_acct, "/reeve-e2e-nonexistent");
	if (!strcmp(name, "open_by_handle_at"))
		return syscall(SYS_open_by_handle_at, -1, NULL, 0);
	if (!strcmp(name, "pivot_root"))
		return syscall(SYS_pivot_root, "/reeve-e2e-nonexistent", "/reeve-e2e-nonexistent");
	if (!strcmp(name, "chroot"))
		return syscall(SYS_chroot, "/reeve-e2e-nonexistent");
	if (!strcmp(name, "clone3"))
		return syscall(SYS_clone3, NULL, 0); /* EINVAL if allowed */
	if (!strcmp(name, "ioctl_tiocsti")) {
		/* A pipe is no tty: ENOTTY if allowed, EPERM when the filter matches TIOCSTI. */
		if (pipe(p) < 0)
			return -1;
		return syscall(SYS_ioctl, p[0], TIOCSTI, &c);
	}
	if (!strcmp(name, "getpid"))
		return syscall(SYS_getpid);
	errno = EINVAL;
	return -2;
}

static const char *names[] = {
	"mount", "umount2", "unshare", "setns", "keyctl", "add_key", "ptrace", "bpf",
	"perf_event_open", "userfaultfd", "io_uring_setup", "kexec_load", "init_module", "reboot",
	"swapon", "clock_settime", "acct", "open_by_handle_at", "pivot_root", "chroot", "clone3",
	"ioctl_tiocsti", "getpid", NULL,
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "segv")) {
		volatile int *p = NULL;
		*p = 1;
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; names[i]; i++) {
		int st;
		pid_t pid = fork();

		if (pid < 0) {
			printf("%s=FORK_FAILED_%s\n", names[i], strerrorname_np(errno));
			continue;
		}
		if (pid == 0) {
			long r = call(names[i]);
			/* 0 = OK; errno values come back as exit codes. */
			_exit(r < 0 ? (errno & 0xff) : 0);
		}
		if (waitpid(pid, &st, 0) < 0) {
			printf("%s=WAIT_FAILED\n", names[i]);
			continue;
		}
		if (WIFSIGNALED(st))
			printf("%s=SIGNAL_%d\n", names[i], WTERMSIG(st));
		else if (WEXITSTATUS(st) == 0)
			printf("%s=OK\n", names[i]);
		else
			printf("%s=%s\n", names[i], strerrorname_np(WEXITSTATUS(st)));
	}
	printf("probe_pid=%ld\n", (long)getpid());
	return 0;
}
