"""Which worker holds a connection, from a fake /proc (net/tcp and fd symlinks as the kernel shows them)."""

from __future__ import annotations

from pathlib import Path

from bench.soak.memory import MemorySampler
from bench.soak.owners import listening_inodes, owners, server_side_inodes, serving_processes, socket_inodes

SERVER_PORT = 8000  # 0x1F40
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def tcp_line(slot: int, local_port: int, remote_port: int, state: str, inode: int) -> str:
    return (
        f"   {slot}: 0100007F:{local_port:04X} 0100007F:{remote_port:04X} {state} 00000000:00000000 "
        f"00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


def fake_proc(root: Path, processes: dict[int, tuple[int, list[int], int]], sockets: list[str]) -> Path:
    """`pid: (ppid, socket inodes among its fds, rss kB)` and the lines of /proc/net/tcp."""
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(HEADER + "".join(sockets))
    for pid, (ppid, inodes, rss) in processes.items():
        entry = root / str(pid)
        (entry / "fd").mkdir(parents=True)
        (entry / "stat").write_text(f"{pid} (python) S {ppid} 1 1 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0\n")
        (entry / "status").write_text(f"Name:\tpython\nVmRSS:\t{rss} kB\n")
        (entry / "fd" / "0").symlink_to("/dev/null")
        (entry / "fd" / "1").symlink_to("pipe:[99]")
        for number, inode in enumerate(inodes, start=3):
            (entry / "fd" / str(number)).symlink_to(f"socket:[{inode}]")
    return root


SOCKETS = [
    tcp_line(0, SERVER_PORT, 0, "0A", 500),  # the listening socket
    tcp_line(1, SERVER_PORT, 40001, "01", 601),  # server ends of three connections
    tcp_line(2, SERVER_PORT, 40002, "01", 602),
    tcp_line(3, SERVER_PORT, 40003, "06", 0),  # TIME_WAIT: no inode, no owner
    tcp_line(4, 40001, SERVER_PORT, "01", 701),  # the client ends
    tcp_line(5, 9999, 40004, "01", 801),  # another server
]
# 10: the supervisor, 11 and 12: workers, 13: a helper (multiprocessing's resource tracker)
PROCESSES = {
    10: (1, [500], 20_000),
    11: (10, [500, 601], 100_000),
    12: (10, [500, 602], 110_000),
    13: (10, [], 12_000),
    14: (1, [701, 801], 5_000),
}


def test_tcp_table_reading(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, PROCESSES, SOCKETS)
    assert server_side_inodes(SERVER_PORT, proc) == {40001: 601, 40002: 602}
    assert listening_inodes(SERVER_PORT, proc) == {500}
    assert socket_inodes(11, proc) == {500, 601}
    assert socket_inodes(999, proc) == set()


def test_workers_are_the_children_holding_the_listening_socket(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, PROCESSES, SOCKETS)
    assert serving_processes([11, 12, 13], SERVER_PORT, proc) == [11, 12]


def test_connection_owners(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, PROCESSES, SOCKETS)
    assert owners([40001, 40002, 40003, 40009], SERVER_PORT, [11, 12], proc) == {40001: 11, 40002: 12}
    assert owners([40001], SERVER_PORT, [12], proc) == {}


def test_memory_sampler_follows_the_workers_and_notices_a_new_one(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, PROCESSES, SOCKETS)
    sampler = MemorySampler(10, SERVER_PORT, proc=proc)
    sampler.sample(0.0)
    assert sampler.first_pids == [11, 12]
    assert sampler.samples == {11: [(0.0, 100_000)], 12: [(0.0, 110_000)]}
    # worker 12 dies and the supervisor starts 15
    for name in ("stat", "status"):
        (proc / "12" / name).unlink()
    for fd in (proc / "12" / "fd").iterdir():
        fd.unlink()
    (proc / "15" / "fd").mkdir(parents=True)
    (proc / "15" / "stat").write_text("15 (python) S 10 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0\n")
    (proc / "15" / "status").write_text("VmRSS:\t90000 kB\n")
    (proc / "15" / "fd" / "3").symlink_to("socket:[500]")
    sampler.sample(1.0)
    assert sampler.samples[11] == [(0.0, 100_000), (1.0, 100_000)]
    assert sampler.samples[15] == [(1.0, 90_000)]
    assert sampler.new_pids == [15]
