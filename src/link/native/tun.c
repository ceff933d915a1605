/*
 * netstack_tun: a small Node-API addon that owns one Linux TUN device.
 *
 * It does only what JavaScript cannot do by itself:
 *   - open /dev/net/tun and TUNSETIFF (IFF_TUN | IFF_NO_PI: raw IPv4 packets, no header;
 *     or IFF_TAP | IFF_NO_PI: Ethernet frames),
 *   - configure the interface by ioctl on an AF_INET socket (address, netmask, MTU, up),
 *   - watch the non-blocking fd with uv_poll and read every ready packet (up to a bound)
 *     in one wake-up, handing them to JavaScript in ONE callback as views of one ArrayBuffer,
 *   - write a batch of packets in one native call.
 * All protocol logic lives in TypeScript (src/link/tun.ts wraps this).
 *
 * Exports (all synchronous, errors thrown as Error with .code = errno name, .syscall):
 *   open(name, tap, offload)            -> { handle, name, vnetHdrLen, offloadError }
 *                                       ("" lets the kernel pick tunN/tapN);
 *                                       tap true: IFF_TAP, whole Ethernet frames instead of IPv4 packets;
 *                                       offload true (TUN only): IFF_VNET_HDR, TUNSETVNETHDRSZ(10),
 *                                       TUNSETOFFLOAD(CSUM|TSO4|TSO6). If the kernel refuses any of
 *                                       these, the device is reopened without them (vnetHdrLen 0) and
 *                                       offloadError says which step failed.
 *                                       With vnetHdrLen 10 every packet read or written is preceded by
 *                                       a struct virtio_net_hdr (decoded in TypeScript, src/link/virtio.ts).
 *   setAddress(name, addr, netmask)     addr/netmask: uint32 in host order (10.0.0.1 = 0x0a000001)
 *   setMtu(name, mtu) / getMtu(name) / setTxQueueLen(name, packets)
 *   setUp(name, up)
 *   start(handle, onPackets, onWritable, onError)
 *                                       onPackets(packets, vnetHdrs): vnetHdrs is one Uint8Array with
 *                                       vnetHdrLen bytes per packet (the headers, in order), or undefined
 *   writeBatch(handle, packets, start, vnetHdrs?) -> { consumed, failed, bytes, blocked }
 *                                       vnetHdrs: vnetHdrLen bytes per element of `packets` (index i at
 *                                       i * vnetHdrLen); absent: an all-zero header (no offload asked)
 *   close(handle)                       idempotent
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_tun.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <uv.h>

/* Read bounds per wake-up: at most this many packets, and stop once the slab is this full.
 * The poll is level-triggered, so packets left behind wake us again on the next loop turn
 * (after timers and other I/O had their chance). */
#define MAX_BATCH_PACKETS 256
#define SLAB_FILL_LIMIT (1024 * 1024)
#define MAX_PACKET (65536 + 32) /* an IPv4 packet is at most 65535 bytes (+ an Ethernet header in TAP mode) */
/* struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. 10 bytes, not
 * the 12 of virtio_net_hdr_mrg_rxbuf: its extra num_buffers field means nothing on a TUN (there are
 * no merged receive buffers), 10 is the kernel's default for TUN, and it is what other user-space
 * stacks on TUN use (gVisor's fdbased endpoint, wireguard-go). */
#define VNET_HDR_LEN 10
#define MAX_READ (VNET_HDR_LEN + MAX_PACKET)
/* Packets at least this long are handed over in an ArrayBuffer of their own (see read_batch). */
#define OWN_BUFFER_MIN (16 * 1024)
#define SLAB_SIZE (SLAB_FILL_LIMIT + MAX_READ)

typedef struct tun_handle {
  napi_env env;
  int fd;
  int closed;            /* close() ran (or the env is being torn down) */
  int finalized;         /* the JS external was garbage collected */
  int poll_initialised;  /* uv_poll_init succeeded: the handle must be uv_close()d */
  int poll_closing;      /* uv_close issued, waiting for on_poll_closed */
  int events;            /* UV_READABLE / UV_WRITABLE currently armed */
  int vnet_hdr_len;      /* 0, or VNET_HDR_LEN when opened with IFF_VNET_HDR */
  uv_poll_t poll;
  napi_ref self_ref;     /* keeps the external alive while it is being polled */
  napi_ref on_packets;
  napi_ref on_writable;
  napi_ref on_error;
  napi_async_context async_ctx;
  uint8_t *slab;         /* read buffer, allocated once on start() */
  uint32_t lens[MAX_BATCH_PACKETS];
} tun_handle;

/* ---------- errors ---------- */

/* Throw an Error whose .code is the errno name (EPERM, ENOENT, EBUSY...), like Node does. */
static void throw_errno(napi_env env, int err, const char *syscall, const char *detail) {
  const char *code = strerrorname_np(err);
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, detail ? detail : "", strerror(err));
  napi_value code_v, msg_v, error, syscall_v, errno_v;
  napi_create_string_utf8(env, code ? code : "EUNKNOWN", NAPI_AUTO_LENGTH, &code_v);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_error(env, code_v, msg_v, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
  napi_create_int32(env, -err, &errno_v); /* Node convention: negative errno */
  napi_set_named_property(env, error, "errno", errno_v);
  napi_throw(env, error);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ---------- argument helpers ---------- */

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    throw_type(env, "missing arguments");
    return 0;
  }
  return 1;
}

/* Copy an interface name argument into buf (IFNAMSIZ). Returns 0 and throws if invalid. */
static int get_ifname(napi_env env, napi_value v, char *buf) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, IFNAMSIZ, &len) != napi_ok) {
    throw_type(env, "interface name must be a string");
    return 0;
  }
  /* napi truncates silently: check the real length. */
  size_t full = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &full);
  if (full >= IFNAMSIZ || strchr(buf, '/') != NULL) {
    napi_throw_range_error(env, "EINVAL", "interface name must be at most 15 characters and contain no '/'");
    return 0;
  }
  return 1;
}

static tun_handle *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    throw_type(env, "expected a TUN handle");
    return NULL;
  }
  return (tun_handle *)data;
}

/* ---------- lifetime ---------- */

static void free_handle(tun_handle *h) {
  free(h->slab);
  free(h);
}

static void on_poll_closed(uv_handle_t *uvh) {
  tun_handle *h = (tun_handle *)uvh->data;
  h->poll_closing = 0;
  h->poll_initialised = 0;
  if (h->finalized) free_handle(h); /* the external is gone: we were the last owner */
}

/* Stop polling and close the fd. Safe to call more than once. Does not touch JS values. */
static void close_fd_and_poll(tun_handle *h) {
  if (h->closed) return;
  h->closed = 1;
  if (h->poll_initialised && !h->poll_closing) {
    uv_poll_stop(&h->poll);
    h->poll_closing = 1;
    uv_close((uv_handle_t *)&h->poll, on_poll_closed);
  }
  /* The kernel removes a non-persistent TUN interface when its last fd closes. */
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
}

/* Process/worker teardown: release the fd even if JS never called close(). */
static void env_cleanup(void *arg) {
  close_fd_and_poll((tun_handle *)arg);
}

/* Release everything that refers to JS values (must run on the JS thread, outside GC). */
static void release_js(tun_handle *h) {
  napi_env env = h->env;
  napi_remove_env_cleanup_hook(env, env_cleanup, h);
  if (h->on_packets) napi_delete_reference(env, h->on_packets);
  if (h->on_writable) napi_delete_reference(env, h->on_writable);
  if (h->on_error) napi_delete_reference(env, h->on_error);
  if (h->self_ref) napi_delete_reference(env, h->self_ref);
  if (h->async_ctx) napi_async_destroy(env, h->async_ctx);
  h->on_packets = h->on_writable = h->on_error = h->self_ref = NULL;
  h->async_ctx = NULL;
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_handle *h = (tun_handle *)data;
  /* While polling, self_ref keeps us alive, so here nobody is polling. */
  if (!h->closed) {
    close_fd_and_poll(h);
    release_js(h);
  }
  h->finalized = 1;
  if (!h->poll_closing) free_handle(h);
}

/* ---------- calling into JS from a libuv callback ---------- */

/* Call a stored JS function. If it throws, the exception is re-raised as an uncaught
 * exception (process 'uncaughtException'), never swallowed. */
static void call_js(tun_handle *h, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = h->env;
  napi_value fn, recv, result;
  if (fn_ref == NULL || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); /* napi_make_callback needs an object as `this` */
  /* napi_make_callback (not napi_call_function) enters an async context and drains
   * process.nextTick and microtasks afterwards, like any Node I/O callback. */
  napi_status st = napi_make_callback(env, h->async_ctx, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

static void report_error(tun_handle *h, int err, const char *syscall) {
  napi_env env = h->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  /* Build the error without throwing it: throw, then catch it back. */
  throw_errno(env, err, syscall, "tun");
  napi_value exc;
  napi_get_and_clear_last_exception(env, &exc);
  call_js(h, h->on_error, 1, &exc);
  napi_close_handle_scope(env, scope);
}

/* Read every ready packet (bounded) and deliver them in one JS call. */
static void read_batch(tun_handle *h) {
  size_t used = 0;
  uint32_t count = 0;
  int fatal = 0;
  while (count < MAX_BATCH_PACKETS && used < SLAB_FILL_LIMIT) {
    ssize_t n = read(h->fd, h->slab + used, MAX_READ);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fatal = errno;
      break;
    }
    if (n == 0) break;
    if (n < h->vnet_hdr_len) continue; /* cannot happen: the kernel always writes the header */
    h->lens[count++] = (uint32_t)n;
    used += (size_t)n;
  }

  if (count > 0) {
    napi_env env = h->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    /* One allocation per batch: copy the slab into one ArrayBuffer, hand out views. With virtio
     * headers, they go (packed, in order) into a second small buffer, and the views skip them. */
    const size_t hl = (size_t)h->vnet_hdr_len;
    void *data = NULL, *hdata = NULL;
    napi_value ab, arr, argv[2];
    size_t shared = 0;
    for (uint32_t i = 0; i < count; i++)
      if (h->lens[i] - hl < OWN_BUFFER_MIN) shared += h->lens[i] - hl;
    napi_create_arraybuffer(env, shared, &data, &ab);
    napi_create_array_with_length(env, count, &arr);
    if (hl > 0) {
      napi_value hab;
      napi_create_arraybuffer(env, hl * count, &hdata, &hab);
      napi_create_typedarray(env, napi_uint8_array, hl * count, hab, 0, &argv[1]);
    } else {
      napi_get_undefined(env, &argv[1]);
    }
    size_t in = 0, out = 0;
    for (uint32_t i = 0; i < count; i++) {
      size_t plen = h->lens[i] - hl;
      if (hl > 0) memcpy((uint8_t *)hdata + hl * i, h->slab + in, hl);
      napi_value view;
      if (plen >= OWN_BUFFER_MIN) {
        /* A super-segment gets an ArrayBuffer of its own: TCP may then keep its payload as it is
         * (no second copy, src/tcp/receiver.ts) without pinning the rest of the batch. */
        void *own = NULL;
        napi_value oab;
        napi_create_arraybuffer(env, plen, &own, &oab);
        memcpy(own, h->slab + in + hl, plen);
        napi_create_typedarray(env, napi_uint8_array, plen, oab, 0, &view);
      } else {
        memcpy((uint8_t *)data + out, h->slab + in + hl, plen);
        napi_create_typedarray(env, napi_uint8_array, plen, ab, out, &view);
        out += plen;
      }
      napi_set_element(env, arr, i, view);
      in += h->lens[i];
    }
    argv[0] = arr;
    call_js(h, h->on_packets, 2, argv);
    napi_close_handle_scope(env, scope);
  }

  if (fatal && !h->closed) {
    /* Stop watching so a broken fd cannot spin the loop; JS decides what to do. */
    uv_poll_stop(&h->poll);
    h->events = 0;
    report_error(h, fatal, "read");
  }
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  tun_handle *h = (tun_handle *)poll->data;
  if (h->closed) return;
  if (status < 0) {
    uv_poll_stop(&h->poll);
    h->events = 0;
    report_error(h, -status, "uv_poll");
    return;
  }
  if (events & UV_WRITABLE) {
    /* Writable again: stop asking (a TUN fd is almost always writable) and let JS flush. */
    h->events &= ~UV_WRITABLE;
    uv_poll_start(&h->poll, h->events, on_poll);
    napi_handle_scope scope;
    napi_open_handle_scope(h->env, &scope);
    call_js(h, h->on_writable, 0, NULL);
    napi_close_handle_scope(h->env, scope);
    if (h->closed) return; /* the callback may have closed us */
  }
  if (events & UV_READABLE) read_batch(h);
}

/* ---------- exported functions ---------- */

/* Open /dev/net/tun and TUNSETIFF. Returns the fd, or -1 with errno set (*step names the call). */
static int open_tun(const char *name, bool tap, bool vnet, struct ifreq *ifr, const char **step) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *step = "open";
    return -1;
  }
  memset(ifr, 0, sizeof *ifr);
  /* layer 3 (TUN) or layer 2 (TAP), no 4-byte packet-info prefix */
  ifr->ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr->ifr_name, name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, ifr) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    *step = "TUNSETIFF";
    return -1;
  }
  return fd;
}

/* The virtio-net header and offloads on an fd opened with IFF_VNET_HDR. 0, or errno (*step names the call). */
static int set_offload(int fd, const char **step) {
  int hdr_len = VNET_HDR_LEN;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
    *step = "TUNSETVNETHDRSZ";
    return errno;
  }
  /* The header's 16-bit fields are little-endian (what virtio 1.0 says). On a little-endian host
   * that is the default anyway, so a kernel that refuses the ioctl changes nothing there. */
  int le = 1;
  if (ioctl(fd, TUNSETVNETLE, &le) < 0) {
    uint16_t probe = 1;
    if (*(uint8_t *)&probe != 1) {
      *step = "TUNSETVNETLE";
      return errno;
    }
  }
  /* We accept partial checksums and TCP super-segments (TSO) both ways; the kernel then also sends
   * us GSO packets and partial checksums. No UFO/USO: our UDP does not handle them. */
  unsigned int offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
    *step = "TUNSETOFFLOAD";
    return errno;
  }
  return 0;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[IFNAMSIZ] = {0};
  bool tap = false, offload = false;
  if (!get_args(env, info, 1, argv) || !get_ifname(env, argv[0], name)) return NULL;
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 2 && napi_get_value_bool(env, argv[1], &tap) != napi_ok) return throw_type(env, "tap must be a boolean");
  if (argc >= 3 && napi_get_value_bool(env, argv[2], &offload) != napi_ok) return throw_type(env, "offload must be a boolean");

  struct ifreq ifr;
  const char *step = NULL;
  char offload_error[96] = {0};
  int vnet = offload && !tap;
  int fd = -1;
  if (vnet) {
    fd = open_tun(name, tap, true, &ifr, &step);
    int err = fd < 0 ? errno : set_offload(fd, &step);
    if (err != 0) {
      /* Refused: today's path. (Closing the fd removes a non-persistent interface, so the name is free again.) */
      const char *code = strerrorname_np(err);
      snprintf(offload_error, sizeof offload_error, "%s: %s", step, code ? code : "error");
      if (fd >= 0) close(fd);
      fd = -1;
      vnet = 0;
    }
  }
  if (fd < 0) fd = open_tun(name, tap, false, &ifr, &step);
  if (fd < 0) {
    int err = errno;
    if (strcmp(step, "open") == 0) {
      throw_errno(env, err, "open", "/dev/net/tun");
      return NULL;
    }
    /* The kernel answers EINVAL when the name belongs to an interface that is not a TUN
     * device (a dummy, a veth, a TAP...). To the user that is "the name is taken". */
    if (err == EINVAL && name[0] != '\0' && if_nametoindex(name) != 0) err = EBUSY;
    throw_errno(env, err, "TUNSETIFF", name[0] ? name : "(kernel-chosen name)");
    return NULL;
  }

  tun_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    close(fd);
    throw_errno(env, ENOMEM, "calloc", "tun");
    return NULL;
  }
  h->env = env;
  h->fd = fd;
  h->vnet_hdr_len = vnet ? VNET_HDR_LEN : 0;

  napi_value external, result, name_v, v;
  if (napi_create_external(env, h, finalize_handle, NULL, &external) != napi_ok) {
    close(fd);
    free(h);
    return NULL;
  }
  napi_add_env_cleanup_hook(env, env_cleanup, h);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "handle", external);
  napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &name_v);
  napi_set_named_property(env, result, "name", name_v);
  napi_create_int32(env, h->vnet_hdr_len, &v);
  napi_set_named_property(env, result, "vnetHdrLen", v);
  if (offload_error[0]) napi_create_string_utf8(env, offload_error, NAPI_AUTO_LENGTH, &v);
  else napi_get_undefined(env, &v);
  napi_set_named_property(env, result, "offloadError", v);
  return result;
}

/* Interface ioctls go through any AF_INET socket; they name the interface in ifr_name. */
static int ifreq_ioctl(napi_env env, unsigned long req, const char *reqname, struct ifreq *ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    throw_errno(env, errno, "socket", "AF_INET");
    return 0;
  }
  int rc = ioctl(s, req, ifr);
  int err = errno;
  close(s);
  if (rc < 0) {
    throw_errno(env, err, reqname, ifr->ifr_name);
    return 0;
  }
  return 1;
}

static void set_sockaddr_in(struct sockaddr *sa, uint32_t addr_host_order) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(addr_host_order);
  memcpy(sa, &sin, sizeof sin);
}

static napi_value js_set_address(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  uint32_t addr, mask;
  if (!get_args(env, info, 3, argv) || !get_ifname(env, argv[0], ifr.ifr_name)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &addr) != napi_ok || napi_get_value_uint32(env, argv[2], &mask) != napi_ok)
    return throw_type(env, "address and netmask must be uint32 numbers");
  set_sockaddr_in(&ifr.ifr_addr, addr);
  if (!ifreq_ioctl(env, SIOCSIFADDR, "SIOCSIFADDR", &ifr)) return NULL;
  /* SIOCSIFADDR guesses a classful mask; set the real one. */
  set_sockaddr_in(&ifr.ifr_netmask, mask);
  if (!ifreq_ioctl(env, SIOCSIFNETMASK, "SIOCSIFNETMASK", &ifr)) return NULL;
  return NULL;
}

static napi_value js_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int32_t mtu;
  if (!get_args(env, info, 2, argv) || !get_ifname(env, argv[0], ifr.ifr_name)) return NULL;
  if (napi_get_value_int32(env, argv[1], &mtu) != napi_ok) return throw_type(env, "mtu must be a number");
  ifr.ifr_mtu = mtu;
  ifreq_ioctl(env, SIOCSIFMTU, "SIOCSIFMTU", &ifr);
  return NULL;
}

/* The kernel's queue of packets waiting for us to read (txqueuelen; TUN's default is 500). */
static napi_value js_set_tx_queue_len(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int32_t len;
  if (!get_args(env, info, 2, argv) || !get_ifname(env, argv[0], ifr.ifr_name)) return NULL;
  if (napi_get_value_int32(env, argv[1], &len) != napi_ok) return throw_type(env, "queue length must be a number");
  ifr.ifr_qlen = len;
  ifreq_ioctl(env, SIOCSIFTXQLEN, "SIOCSIFTXQLEN", &ifr);
  return NULL;
}

static napi_value js_get_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (!get_args(env, info, 1, argv) || !get_ifname(env, argv[0], ifr.ifr_name)) return NULL;
  if (!ifreq_ioctl(env, SIOCGIFMTU, "SIOCGIFMTU", &ifr)) return NULL;
  napi_create_int32(env, ifr.ifr_mtu, &result);
  return result;
}

static napi_value js_set_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  bool up;
  if (!get_args(env, info, 2, argv) || !get_ifname(env, argv[0], ifr.ifr_name)) return NULL;
  if (napi_get_value_bool(env, argv[1], &up) != napi_ok) return throw_type(env, "up must be a boolean");
  if (!ifreq_ioctl(env, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr)) return NULL;
  if (up)
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  else
    ifr.ifr_flags &= ~IFF_UP;
  ifreq_ioctl(env, SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr);
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  tun_handle *h = get_handle(env, argv[0]);
  if (h == NULL) return NULL;
  if (h->closed) {
    throw_errno(env, EBADF, "start", "tun (closed)");
    return NULL;
  }
  if (h->poll_initialised) {
    napi_throw_error(env, "EALREADY", "the TUN device is already being read");
    return NULL;
  }
  for (int i = 1; i < 4; i++) {
    napi_valuetype t;
    napi_typeof(env, argv[i], &t);
    if (t != napi_function) return throw_type(env, "onPackets, onWritable and onError must be functions");
  }
  h->slab = malloc(SLAB_SIZE);
  if (h->slab == NULL) {
    throw_errno(env, ENOMEM, "malloc", "tun read slab");
    return NULL;
  }
  napi_value resource_name;
  napi_create_string_utf8(env, "netstack:TunRead", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &h->async_ctx);
  napi_create_reference(env, argv[1], 1, &h->on_packets);
  napi_create_reference(env, argv[2], 1, &h->on_writable);
  napi_create_reference(env, argv[3], 1, &h->on_error);
  napi_create_reference(env, argv[0], 1, &h->self_ref);

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int rc = uv_poll_init(loop, &h->poll, h->fd);
  if (rc < 0) {
    release_js(h);
    throw_errno(env, -rc, "uv_poll_init", "tun");
    return NULL;
  }
  h->poll.data = h;
  h->poll_initialised = 1;
  h->events = UV_READABLE;
  uv_poll_start(&h->poll, h->events, on_poll);
  return NULL;
}

/* Write packets[start..] with one write(2) each (a TUN write is exactly one packet).
 * Stops at EAGAIN and arms UV_WRITABLE so onWritable fires when the rest can go. */
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 3, argv)) return NULL;
  tun_handle *h = get_handle(env, argv[0]);
  if (h == NULL) return NULL;
  uint32_t length = 0, start = 0;
  bool is_array = false;
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return throw_type(env, "packets must be an array");
  napi_get_array_length(env, argv[1], &length);
  napi_get_value_uint32(env, argv[2], &start);
  if (h->closed) {
    throw_errno(env, EBADF, "write", "tun (closed)");
    return NULL;
  }
  /* The virtio headers, vnet_hdr_len bytes per packet, or zeros when none are given. */
  const size_t hl = (size_t)h->vnet_hdr_len;
  static const uint8_t zero_hdr[VNET_HDR_LEN] = {0};
  uint8_t *hdrs = NULL;
  size_t hdrs_len = 0;
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (hl > 0 && argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t != napi_undefined) {
      napi_typedarray_type htype;
      bool is_ta = false;
      napi_is_typedarray(env, argv[3], &is_ta);
      if (!is_ta) return throw_type(env, "vnetHdrs must be a Uint8Array");
      napi_get_typedarray_info(env, argv[3], &htype, &hdrs_len, (void **)&hdrs, NULL, NULL);
      if (htype != napi_uint8_array || hdrs_len < hl * length) return throw_type(env, "vnetHdrs must hold one header per packet");
    }
  }

  uint32_t i = start, failed = 0;
  double bytes = 0;
  bool blocked = false;
  for (; i < length; i++) {
    napi_value el;
    napi_typedarray_type type;
    size_t len = 0;
    void *data = NULL;
    bool is_ta = false;
    napi_get_element(env, argv[1], i, &el);
    napi_is_typedarray(env, el, &is_ta);
    if (!is_ta) return throw_type(env, "each packet must be a Uint8Array");
    napi_get_typedarray_info(env, el, &type, &len, &data, NULL, NULL);
    if (type != napi_uint8_array) return throw_type(env, "each packet must be a Uint8Array");
    ssize_t n;
    if (hl > 0) {
      struct iovec iov[2] = {
          {.iov_base = (void *)(hdrs ? hdrs + hl * i : zero_hdr), .iov_len = hl},
          {.iov_base = data, .iov_len = len},
      };
      do {
        n = writev(h->fd, iov, 2);
      } while (n < 0 && errno == EINTR);
      if (n >= (ssize_t)hl) n -= (ssize_t)hl;
    } else {
      do {
        n = write(h->fd, data, len);
      } while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && h->poll_initialised) {
        blocked = true;
        break;
      }
      /* EAGAIN before start(): no poll to wait on, so that packet is dropped. */
      failed++; /* also EINVAL for a malformed packet, EIO while the interface is down */
      continue;
    }
    bytes += (double)n;
  }
  if (blocked && h->poll_initialised && !(h->events & UV_WRITABLE)) {
    h->events |= UV_WRITABLE;
    uv_poll_start(&h->poll, h->events, on_poll);
  }

  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_uint32(env, i - start, &v);
  napi_set_named_property(env, result, "consumed", v);
  napi_create_uint32(env, failed, &v);
  napi_set_named_property(env, result, "failed", v);
  napi_create_double(env, bytes, &v);
  napi_set_named_property(env, result, "bytes", v);
  napi_get_boolean(env, blocked, &v);
  napi_set_named_property(env, result, "blocked", v);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  tun_handle *h = get_handle(env, argv[0]);
  if (h == NULL || h->closed) return NULL;
  close_fd_and_poll(h);
  release_js(h);
  return NULL;
}

/* trimMemory(): give the memory the process has freed back to the system. glibc keeps freed
 * chunks for reuse and returns the top of its heap only, so after a flood of packet buffers the
 * RSS stays at the peak; malloc_trim(0) releases every free page. Returns whether it released
 * any (false where the C library is not glibc). */
static napi_value js_trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) != 0;
#endif
  napi_value v;
  napi_get_boolean(env, released, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setAddress", NULL, js_set_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMtu", NULL, js_set_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMtu", NULL, js_get_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setTxQueueLen", NULL, js_set_tx_queue_len, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setUp", NULL, js_set_up, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, js_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimMemory", NULL, js_trim_memory, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
