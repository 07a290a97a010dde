"""Which worker process holds the server end of a loopback TCP connection, read from /proc.

The server's workers (granian's or uvicorn's) share one listening socket and the kernel hands each
new connection to one of them, so the responses carry nothing that says which worker answered. The connection does: its
server end is a socket (an inode in /proc/net/tcp, keyed by the client's port) that exactly one
worker has among its file descriptors (/proc/<pid>/fd → `socket:[inode]`).
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"


def _tcp_sockets(proc: Path, port: int) -> list[tuple[int, int, bool, int]]:
    """(local port, remote port, listening, inode) of the TCP sockets (IPv4 and IPv6) with `port` at
    one end (a busy machine lists thousands of others, mostly in TIME_WAIT: skipped unsplit)."""
    needle = f":{port:04X} "
    sockets = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            if needle not in line:
                continue
            fields = line.split()
            if len(fields) >= 10:
                local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                sockets.append((local, remote, fields[3] == TCP_LISTEN, int(fields[9])))
    return sockets


def server_side_inodes(server_port: int, proc: Path = PROC) -> dict[int, int]:
    """{client port: inode} of the connected sockets whose local port is `server_port`."""
    return {
        remote: inode
        for local, remote, listening, inode in _tcp_sockets(proc, server_port)
        if local == server_port and not listening and inode
    }


def listening_inodes(server_port: int, proc: Path = PROC) -> set[int]:
    return {
        inode for local, _, listening, inode in _tcp_sockets(proc, server_port) if local == server_port and listening
    }


def serving_processes(pids: list[int], server_port: int, proc: Path = PROC) -> list[int]:
    """The processes among `pids` that hold the listening socket: the workers, not helpers such as
    multiprocessing's resource tracker (uvicorn's supervisor holds it too: pass only its children)."""
    listening = listening_inodes(server_port, proc)
    return [pid for pid in pids if socket_inodes(pid, proc) & listening]


def socket_inodes(pid: int, proc: Path = PROC) -> set[int]:
    """Inodes of the sockets among the process's file descriptors (empty if it is gone)."""
    inodes: set[int] = set()
    try:
        entries = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = str(entry.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def owners(client_ports: list[int], server_port: int, worker_pids: list[int], proc: Path = PROC) -> dict[int, int]:
    """{client port: worker pid} for the connections some worker has accepted (others are left out)."""
    by_port = server_side_inodes(server_port, proc)
    wanted = {by_port[p]: p for p in client_ports if p in by_port}
    result: dict[int, int] = {}
    for pid in worker_pids:
        for inode in socket_inodes(pid, proc) & wanted.keys():
            result[wanted[inode]] = pid
    return result
