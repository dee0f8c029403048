/* benches/vm/now.c: print CLOCK_MONOTONIC as seconds with nanoseconds (busybox date has no %N).
 * `now` prints the clock; `now SINCE` prints milliseconds elapsed since the value SINCE. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  struct timespec t;
  if (clock_gettime(CLOCK_MONOTONIC, &t)) { perror("clock_gettime"); return 1; }
  double s = (double)t.tv_sec + (double)t.tv_nsec / 1e9;
  if (argc > 1) printf("%.3f\n", (s - strtod(argv[1], NULL)) * 1000.0);
  else printf("%.9f\n", s);
  return 0;
}
