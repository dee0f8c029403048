/* benches/vm/gateway.c: the density bench's gateway, a tiny static program that waits for
 * SIGTERM and exits 0 (busybox sleep as PID 1 of its pid namespace would ignore SIGTERM, and
 * reeved would then wait stop_grace_ms before SIGKILL). Built with gcc -static. */
#include <signal.h>
#include <unistd.h>

static void done(int sig) { (void)sig; _exit(0); }

int main(void) {
  signal(SIGTERM, done);
  signal(SIGINT, done);
  for (;;) pause();
}
