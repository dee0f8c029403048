/* benches/floor/floor.c: the in-process floor for the start-latency bench. No runtime:
 * clone with the same namespaces as the bench bundle (mount, pid, net, ipc, uts, cgroup),
 * bind the bundle rootfs, mount /proc, pivot_root onto it, exec /bin/true, wait.
 * Usage: floor ROOTFS   (exit status = child's, 1xx = failing step) */
#define _GNU_SOURCE
#include <sched.h>
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

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: floor ROOTFS\n"); return 2; }
  root = argv[1];
  int pid = clone(child, stack + sizeof stack,
                  CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                      CLONE_NEWCGROUP | SIGCHLD, NULL);
  if (pid < 0) { perror("clone"); return 1; }
  int st;
  if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 1; }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}
