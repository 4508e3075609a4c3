#define _GNU_SOURCE
#include <sys/socket.h>
#include "CSystem.h"

int CSystem_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

uint64_t CSystem_epoll_event_data(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

uint32_t CSystem_epoll_event_flags(const struct epoll_event *events, int index) {
    return events[index].events;
}

int CSystem_IP_BIND_ADDRESS_NO_PORT(void) {
#ifdef IP_BIND_ADDRESS_NO_PORT
    return IP_BIND_ADDRESS_NO_PORT;
#else
    return 24;
#endif
}
