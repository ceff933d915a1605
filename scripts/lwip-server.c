/*
 * The lwIP reference server of `npm run bench`: lwIP 2.1 (Debian's liblwip-dev, its raw
 * TCP API) on a Linux TUN device, serving GET /bytes/N (byte i = i mod 256) with HTTP/1.1
 * keep-alive, so the bench compares netstack with a C user-space stack on the same kind of
 * link. Single-threaded: lwip_init() without the tcpip thread, one poll(2) loop that reads
 * every packet the TUN has, hands each to ip_input(), then runs lwIP's timers.
 *
 *   lwip-server --dev NAME --host A.B.C.D/P --addr A.B.C.D [--port 80] [--mtu 1500]
 *
 * It creates the TUN device itself, gives the kernel's side `--host` (ioctl, as the netstack
 * addon does) and answers for `--addr`. Prints {"ready": true, "pid": N} once serving;
 * reads stdin and exits on "quit" or end of input ("stats" answers {"stats": {...}}).
 * Built by scripts/bench.ts: gcc -O2 lwip-server.c $(pkg-config --cflags --libs lwip).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/route.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#define MAX_REQ 8192 /* request head bytes kept per connection */

static int tun_fd = -1;
static struct netif tun_netif;
static unsigned char pattern[65536];
static unsigned long n_in, n_out, n_requests, n_conns, n_dropped;

static void die(const char *what) {
  fprintf(stderr, "lwip-server: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---------------- the TUN device and its netif ---------------- */

static int open_tun(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  return fd;
}

/* The kernel's side of the link: address, netmask, MTU, up. */
static void configure_host(const char *dev, struct in_addr host, int prefix, int mtu) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  sin->sin_addr = host;
  if (ioctl(s, SIOCSIFADDR, &ifr) < 0) die("SIOCSIFADDR");
  sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(~0u << (32 - prefix));
  if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) die("SIOCSIFNETMASK");
  ifr.ifr_mtu = mtu;
  if (ioctl(s, SIOCSIFMTU, &ifr) < 0) die("SIOCSIFMTU");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
  close(s);
}

/* lwIP hands us a finished IPv4 packet: one write(2) per packet (no batching, as lwIP's tunif). */
static err_t tun_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst) {
  (void)netif;
  (void)dst;
  static unsigned char buf[65536];
  const void *data = p->payload;
  if (p->next != NULL) {
    pbuf_copy_partial(p, buf, p->tot_len, 0);
    data = buf;
  }
  if (write(tun_fd, data, p->tot_len) < 0) n_dropped++;
  else n_out++;
  return ERR_OK;
}

static err_t tun_netif_init(struct netif *netif) {
  netif->name[0] = 't';
  netif->name[1] = 'n';
  netif->output = tun_output;
  netif->flags = 0; /* point-to-point: no ARP, no broadcast */
  return ERR_OK;
}

/* ---------------- HTTP: GET /bytes/N, keep-alive ---------------- */

struct http_conn {
  char req[MAX_REQ];
  size_t have;            /* bytes in req */
  unsigned long long left; /* response body bytes still to queue */
  unsigned long long sent; /* body bytes queued so far (pattern offset) */
  int responding;          /* a response is being sent */
  int close_after;         /* close once the response is out */
  int peer_closed;
};

static void conn_free(struct tcp_pcb *pcb, struct http_conn *c) {
  if (pcb) {
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
  }
  free(c);
}

static void conn_close(struct tcp_pcb *pcb, struct http_conn *c) {
  conn_free(pcb, c);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

/* Queue as much of the body as the send buffer takes. */
static void send_more(struct tcp_pcb *pcb, struct http_conn *c) {
  while (c->left > 0) {
    u16_t room = tcp_sndbuf(pcb);
    if (room == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 1) break;
    size_t off = c->sent % sizeof pattern;
    size_t n = sizeof pattern - off;
    if (n > room) n = room;
    if (n > c->left) n = c->left;
    /* The pattern is static: lwIP may reference it without copying. */
    if (tcp_write(pcb, pattern + off, (u16_t)n, c->left > n ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK) break;
    c->left -= n;
    c->sent += n;
  }
  tcp_output(pcb);
}

static int try_request(struct tcp_pcb *pcb, struct http_conn *c);

/* After a response is fully queued: close, or take the next (pipelined) request. */
static int response_done(struct tcp_pcb *pcb, struct http_conn *c) {
  c->responding = 0;
  if (c->close_after || c->peer_closed) {
    conn_close(pcb, c);
    return 1;
  }
  return try_request(pcb, c);
}

/* Parse one complete request head from c->req, if there is one, and start its response.
   Returns 1 when the connection was closed (pcb and c are gone). */
static int try_request(struct tcp_pcb *pcb, struct http_conn *c) {
  if (c->responding) return 0;
  char *end = memmem(c->req, c->have, "\r\n\r\n", 4);
  if (!end) {
    if (c->have == MAX_REQ) {
      conn_close(pcb, c);
      return 1;
    }
    return 0;
  }
  size_t head_len = (size_t)(end - c->req) + 4;
  *end = '\0';
  n_requests++;
  char *eol = strstr(c->req, "\r\n");
  size_t rl = eol ? (size_t)(eol - c->req) : strlen(c->req);
  int http10 = rl >= 8 && memcmp(c->req + rl - 8, "HTTP/1.0", 8) == 0;
  int keep_alive = !http10;
  for (char *line = strstr(c->req, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "connection:", 11) == 0) {
      const char *v = line + 13;
      while (*v == ' ') v++;
      if (strncasecmp(v, "close", 5) == 0) keep_alive = 0;
      else if (strncasecmp(v, "keep-alive", 10) == 0) keep_alive = 1;
    }
  }
  unsigned long long n = 0;
  int ok = 0;
  if (strncmp(c->req, "GET /bytes/", 11) == 0) {
    char *p = c->req + 11, *q;
    n = strtoull(p, &q, 10);
    ok = q != p && *q == ' ';
  }
  char head[256];
  int hl;
  if (ok) {
    hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nServer: lwip\r\nContent-Type: application/octet-stream\r\nContent-Length: %llu\r\n%s\r\n",
                  n, keep_alive ? "" : "Connection: close\r\n");
  } else {
    n = 0;
    keep_alive = 0;
    hl = snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nServer: lwip\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }
  memmove(c->req, c->req + head_len, c->have - head_len);
  c->have -= head_len;
  c->responding = 1;
  c->close_after = !keep_alive;
  c->left = n;
  c->sent = 0;
  if (tcp_write(pcb, head, (u16_t)hl, TCP_WRITE_FLAG_COPY | (n > 0 ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK) {
    conn_close(pcb, c);
    return 1;
  }
  send_more(pcb, c);
  if (c->left == 0) return response_done(pcb, c);
  return 0;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
  (void)len;
  struct http_conn *c = arg;
  if (!c || !c->responding) return ERR_OK;
  send_more(pcb, c);
  if (c->left == 0) response_done(pcb, c);
  return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
  struct http_conn *c = arg;
  if (!c) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (p == NULL || err != ERR_OK) {
    /* The peer closed: finish the response in progress, then close. */
    if (p) pbuf_free(p);
    c->peer_closed = 1;
    if (!c->responding) conn_close(pcb, c);
    return ERR_OK;
  }
  size_t take = p->tot_len;
  if (take > MAX_REQ - c->have) take = MAX_REQ - c->have;
  pbuf_copy_partial(p, c->req + c->have, (u16_t)take, 0);
  c->have += take;
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  try_request(pcb, c);
  return ERR_OK;
}

static void on_err(void *arg, err_t err) {
  (void)err;
  free(arg); /* the pcb is already gone */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
  (void)arg;
  if (err != ERR_OK || pcb == NULL) return ERR_VAL;
  struct http_conn *c = calloc(1, sizeof *c);
  if (!c) return ERR_MEM;
  n_conns++;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  tcp_nagle_disable(pcb);
  return ERR_OK;
}

/* ---------------- main loop ---------------- */

static int parse_cidr(const char *s, struct in_addr *addr, int *prefix) {
  char buf[64];
  strncpy(buf, s, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  char *slash = strchr(buf, '/');
  *prefix = 24;
  if (slash) {
    *slash = '\0';
    *prefix = atoi(slash + 1);
  }
  return inet_pton(AF_INET, buf, addr) == 1 && *prefix >= 0 && *prefix <= 32;
}

int main(int argc, char **argv) {
  const char *dev = NULL, *host = NULL, *addr = NULL;
  int port = 80, mtu = 1500;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dev")) dev = argv[i + 1];
    else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--addr")) addr = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--mtu")) mtu = atoi(argv[i + 1]);
  }
  struct in_addr host_in, addr_in;
  int prefix;
  if (!dev || !host || !addr || !parse_cidr(host, &host_in, &prefix) || inet_pton(AF_INET, addr, &addr_in) != 1) {
    fprintf(stderr, "usage: lwip-server --dev NAME --host A.B.C.D/P --addr A.B.C.D [--port 80] [--mtu 1500]\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (unsigned char)i;

  tun_fd = open_tun(dev);
  configure_host(dev, host_in, prefix, mtu);

  lwip_init();
  ip4_addr_t ip, mask, gw;
  ip.addr = addr_in.s_addr;
  mask.addr = prefix == 0 ? 0 : htonl(~0u << (32 - prefix));
  gw.addr = host_in.s_addr;
  if (!netif_add(&tun_netif, &ip, &mask, &gw, NULL, tun_netif_init, ip_input)) die("netif_add");
  tun_netif.mtu = (u16_t)mtu;
  netif_set_default(&tun_netif);
  netif_set_up(&tun_netif);
  netif_set_link_up(&tun_netif);

  struct tcp_pcb *l = tcp_new();
  if (!l || tcp_bind(l, IP_ADDR_ANY, (u16_t)port) != ERR_OK) die("tcp_bind");
  l = tcp_listen_with_backlog(l, 255);
  if (!l) die("tcp_listen");
  tcp_accept(l, on_accept);

  printf("{\"ready\": true, \"pid\": %d, \"dev\": \"%s\", \"lwip\": \"%s\"}\n", getpid(), dev, LWIP_VERSION_STRING);
  fflush(stdout);

  static unsigned char pkt[65536];
  char line[256];
  size_t line_len = 0;
  struct pollfd fds[2] = {{.fd = tun_fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    /* lwIP's TCP timers tick every 250 ms; wake at least that often. */
    int r = poll(fds, 2, 50);
    if (r < 0 && errno != EINTR) die("poll");
    if (fds[0].revents & POLLIN) {
      for (int i = 0; i < 256; i++) {
        ssize_t n = read(tun_fd, pkt, sizeof pkt);
        if (n <= 0) break;
        n_in++;
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
        if (!p) {
          n_dropped++;
          continue;
        }
        pbuf_take(p, pkt, (u16_t)n);
        if (tun_netif.input(p, &tun_netif) != ERR_OK) pbuf_free(p);
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
      if (n <= 0) break;
      line_len += (size_t)n;
      line[line_len] = '\0';
      char *nl;
      int quit = 0;
      while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        if (!strcmp(line, "quit")) quit = 1;
        else if (!strcmp(line, "stats"))
          printf("{\"stats\": {\"lwip.packets.in\": %lu, \"lwip.packets.out\": %lu, \"lwip.requests\": %lu, \"lwip.connections\": %lu, \"lwip.dropped\": %lu}}\n",
                 n_in, n_out, n_requests, n_conns, n_dropped);
        else printf("{\"error\": \"unknown command\"}\n");
        fflush(stdout);
        line_len -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, line_len + 1);
      }
      if (quit) break;
      if (line_len == sizeof line - 1) line_len = 0;
    }
    sys_check_timeouts();
  }
  close(tun_fd);
  return 0;
}
