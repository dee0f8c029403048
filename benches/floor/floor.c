/* benches/floor/floor.c: the in-process floor for the start-latency bench. No runtime:
 * clone with the same namespaces as the bench bundle (mount, pid, net, ipc, uts, cgroup),
 * bind the bundle rootfs, mount /proc, pivot_root onto it, exec /bin/true, wait.
 * With CGROUP (a cgroup v2 directory, the VM bench): also what a runtime does for cgroup limits,
 * at its cheapest: mkdir the cgroup, write memory.max, pids.max and cpu.max, clone3 with
 * CLONE_INTO_CGROUP, and rmdir the cgroup after the child exited.
 * Usage: floor ROOTFS [CGROUP]   (exit status = child's, 1xx = failing step) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[1 << 16];
static const char *root;

static int child(void *arg) {
  (void)arg;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) _exit(110);
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) _exit(111);
  if (chdir(root)) _exit(112);
  if (mount("proc", "proc", "proc", 0, NULL)) _exit(113);
  if (syscall(SYS_pivot_root, ".", ".")) _exit(114);
  if (umount2(".", MNT_DETACH)) _exit(115);
  char *argv[] = {"/bin/true", NULL};
  char *envp[] = {NULL};
  execve("/bin/true", argv, envp);
  _exit(116);
}

static int put(const char *dir, const char *file, const char *val) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) { perror(p); return -1; }
  ssize_t n = write(fd, val, strlen(val));
  close(fd);
  if (n < 0) { perror(p); return -1; }
  return 0;
}

/* clone3 into a fresh cgroup with limits (fork-like: the child runs child() itself) */
static int floor_cgroup(const char *cg) {
  if (mkdir(cg, 0755)) { perror(cg); return 1; }
  int rc = 1;
  if (put(cg, "memory.max", "67108864") || put(cg, "pids.max", "64") ||
      put(cg, "cpu.max", "50000 100000"))
    goto out;
  int cgfd = open(cg, O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0) { perror(cg); goto out; }
  struct clone_args a;
  memset(&a, 0, sizeof a);
  a.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
            CLONE_NEWCGROUP | CLONE_INTO_CGROUP;
  a.exit_signal = SIGCHLD;
  a.cgroup = (unsigned long long)cgfd;
  long pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid == 0) child(NULL);
  close(cgfd);
  if (pid < 0) { perror("clone3"); goto out; }
  int st;
  if (waitpid((pid_t)pid, &st, 0) < 0) { perror("waitpid"); goto out; }
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
out:
  if (rmdir(cg)) { perror(cg); rc = rc ? rc : 1; }
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) { fprintf(stderr, "usage: floor ROOTFS [CGROUP]\n"); return 2; }
  root = argv[1];
  if (argc == 3) return floor_cgroup(argv[2]);
  int pid = clone(child, stack + sizeof stack,
                  CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                      CLONE_NEWCGROUP | SIGCHLD, NULL);
  if (pid < 0) { perror("clone"); return 1; }
  int st;
  if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 1; }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}
