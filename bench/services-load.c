/*
 * The load generator of bench/services.ts in C (compiled by the bench with cc -O2 -pthread), so
 * the client's own cost per connection stays small next to the kernel path being measured:
 *   services-load conn|req <host> <port> <seconds> <concurrency> [warmupMs]
 * conn: each of <concurrency> threads connects, sends "ping\n", reads the answer, shuts down its
 *       side, reads until the server's FIN, closes; one completed cycle = one connection.
 * req:  <concurrency> keep-alive connections, each sending "ping\n" and reading the answer.
 * Prints JSON {count, errors, lastError, seconds, rate} like services-load.js.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static int conn_mode;
static double window_start, window_end;
static atomic_long count, errors;
static atomic_int last_errno;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval timeout = {2, 0}; /* connect, send and receive give up after 2 s */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int ping(int fd) {
  char buffer[64];
  if (send(fd, "ping\n", 5, MSG_NOSIGNAL) != 5) return -1;
  return recv(fd, buffer, sizeof buffer, 0) > 0 ? 0 : -1;
}

static void fail(void) {
  atomic_fetch_add(&errors, 1);
  atomic_store(&last_errno, errno ? errno : ETIMEDOUT);
}

static void *worker(void *unused) {
  (void)unused;
  char buffer[64];
  if (conn_mode) {
    while (now() < window_end) {
      int fd = open_socket();
      if (fd < 0) {
        fail();
        continue;
      }
      int ok = ping(fd) == 0;
      if (ok) {
        shutdown(fd, SHUT_WR);
        ok = recv(fd, buffer, sizeof buffer, 0) == 0; /* the server's FIN */
      }
      close(fd);
      if (!ok) fail();
      else {
        double t = now();
        if (t >= window_start && t < window_end) atomic_fetch_add(&count, 1);
      }
    }
  } else {
    int fd = open_socket();
    if (fd < 0) {
      fail();
      return NULL;
    }
    while (now() < window_end) {
      if (ping(fd) < 0) {
        fail();
        break;
      }
      double t = now();
      if (t >= window_start && t < window_end) atomic_fetch_add(&count, 1);
    }
    close(fd);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 6 || (strcmp(argv[1], "conn") && strcmp(argv[1], "req"))) {
    fprintf(stderr, "usage: services-load conn|req <host> <port> <seconds> <concurrency> [warmupMs]\n");
    return 64;
  }
  conn_mode = !strcmp(argv[1], "conn");
  target.sin_family = AF_INET;
  target.sin_port = htons(atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) return 64;
  double seconds = atof(argv[4]);
  int concurrency = atoi(argv[5]);
  double warmup = (argc > 6 ? atof(argv[6]) : 300) / 1000;
  window_start = now() + warmup;
  window_end = window_start + seconds;
  pthread_t threads[256];
  if (concurrency < 1 || concurrency > 256) return 64;
  for (int i = 0; i < concurrency; i++) pthread_create(&threads[i], NULL, worker, NULL);
  for (int i = 0; i < concurrency; i++) pthread_join(threads[i], NULL);
  long n = atomic_load(&count);
  printf("{\"count\":%ld,\"errors\":%ld,\"lastError\":\"%s\",\"seconds\":%g,\"rate\":%g}\n", n,
         atomic_load(&errors), atomic_load(&errors) ? strerror(atomic_load(&last_errno)) : "", seconds,
         n / seconds);
  return n > 0 ? 0 : 1;
}
