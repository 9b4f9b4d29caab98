/*
 * The backend of bench/services.ts in C (epoll, one thread): services-server <port> [<port> …]
 * Answers every chunk with "pong\n" and closes when the client does, like services-server.js.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTENERS 8

int main(int argc, char **argv) {
  int epoll = epoll_create1(0);
  int listeners[MAX_LISTENERS];
  int count = argc - 1;
  if (count < 1 || count > MAX_LISTENERS) {
    fprintf(stderr, "usage: services-server <port> [<port> …]\n");
    return 64;
  }
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[i + 1]))};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 4096) < 0) {
      perror("bind/listen");
      return 1;
    }
    listeners[i] = fd;
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
  }
  struct epoll_event events[256];
  char buffer[4096];
  for (;;) {
    int n = epoll_wait(epoll, events, 256, -1);
    for (int e = 0; e < n; e++) {
      int fd = events[e].data.fd;
      int listener = 0;
      for (int i = 0; i < count; i++) listener |= fd == listeners[i];
      if (listener) {
        int client;
        while ((client = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          int one = 1;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event event = {.events = EPOLLIN, .data.fd = client};
          epoll_ctl(epoll, EPOLL_CTL_ADD, client, &event);
        }
        continue;
      }
      ssize_t got = read(fd, buffer, sizeof buffer);
      if (got > 0) {
        if (write(fd, "pong\n", 5) != 5) close(fd);
      } else if (got == 0 || errno != EAGAIN) {
        close(fd); /* EOF (our FIN follows) or error; closing also removes it from epoll */
      }
    }
  }
}
