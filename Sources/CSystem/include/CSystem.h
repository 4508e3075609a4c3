// System calls Glibc does not export to Swift: epoll, eventfd, timerfd,
// accept4. _GNU_SOURCE is defined in shims.c only; defining it here breaks
// the Glibc module map (fd_set conflict), see LINUX-NOTES.
#ifndef CSYSTEM_H
#define CSYSTEM_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>

/// accept4 needs _GNU_SOURCE, so it lives behind this wrapper.
int CSystem_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

/// The epoll_event struct is packed; these avoid unaligned access from Swift.
uint64_t CSystem_epoll_event_data(const struct epoll_event *events, int index);
uint32_t CSystem_epoll_event_flags(const struct epoll_event *events, int index);

/// IP_BIND_ADDRESS_NO_PORT is missing from older glibc headers.
int CSystem_IP_BIND_ADDRESS_NO_PORT(void);
#endif
