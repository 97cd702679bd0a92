"""A frame relay that delays what a node receives, for kernels without ``sch_netem``.

Run inside the lab's network namespace as a plain script (standard library only):

    impair.py NODE_TAP PORT DELAY_MS

The caller has taken the node's tap device off its bridge and put ``PORT`` (one end of a
veth pair whose other end is on the bridge) in its place. Frames from the node pass at once;
frames to the node are held for ``DELAY_MS``. Frames larger than the port's MTU (segmentation
offload) cannot be re-sent and are dropped. It writes ``relay ready`` once both sockets are open, and
the caller waits for that line. SIGTERM ends it; the caller re-plugs the tap.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
#: the line the relay writes once both sockets are open
READY = "relay ready"


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def relay(node_if: str, port_if: str, delay_s: float) -> None:
    """Forward frames between ``node_if`` and ``port_if`` until SIGTERM."""
    node, port = _open(node_if), _open(port_if)
    selector = selectors.DefaultSelector()
    selector.register(node, selectors.EVENT_READ)
    selector.register(port, selectors.EVENT_READ)
    held: list[tuple[float, int, bytes]] = []
    order = itertools.count()
    running = True

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stdout.write(f"{READY}\n")  # the caller waits for this before the link counts as delayed
    sys.stdout.flush()
    while running:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _due, _n, frame = heapq.heappop(held)
            with contextlib.suppress(OSError):
                node.send(frame)
        wait = max(0.0, held[0][0] - now) if held else 0.5
        for key, _events in selector.select(timeout=wait):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            while True:
                try:
                    frame, address = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING:
                    continue  # our own transmissions, seen again
                if sock is node:
                    with contextlib.suppress(OSError):
                        port.send(frame)
                else:
                    heapq.heappush(held, (time.monotonic() + delay_s, next(order), frame))


if __name__ == "__main__":
    relay(sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000.0)
