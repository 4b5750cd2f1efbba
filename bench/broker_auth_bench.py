"""What per-device accounts cost the production broker: issuing credentials for a fleet, the broker's start and
memory with that password file and ACL, and how fast devices can (re)connect over TLS — a broker restart makes the
whole fleet reconnect at once.

    .venv/bin/python -m bench.broker_auth_bench [--devices 40000] [--gateways 400] [--behind 50] [--connect 2000]

Prints figures; asserts nothing. Used for deploy/SCALING.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.common import status
from ioc.broker_auth import Accounts, Behind, devices_acl, read_passwd, sync, write_passwd
from testkit.secure_broker import Client, ProductionBroker, rss_bytes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (clock ticks in /proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=40_000, help="devices with their own account")
    parser.add_argument("--gateways", type=int, default=400)
    parser.add_argument("--behind", type=int, default=50, help="devices registered behind each gateway")
    parser.add_argument("--connect", type=int, default=2_000, help="TLS connections to time")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", type=int, default=200, help="connections kept open for the memory figure")
    args = parser.parse_args()

    devices = [f"LAMP{i:06d}" for i in range(args.devices)] + [f"GW{g:04d}" for g in range(args.gateways)]
    behind = {f"GW{g:04d}": [Behind("dien-bien-phu", "water", f"WM{g:04d}{k:03d}") for k in range(args.behind)]
              for g in range(args.gateways)}
    with tempfile.TemporaryDirectory(prefix="ioc-auth-bench-") as tmp:
        broker = ProductionBroker(Path(tmp))
        accounts = broker.etc / "ioc"
        started = time.perf_counter()
        entries, result = sync({}, devices)
        issued_s = time.perf_counter() - started
        write_passwd(accounts / "devices.passwd", entries)
        (accounts / "devices.acl").write_text(devices_acl(Accounts(devices, behind)))
        write_passwd(accounts / "services.passwd", {})
        status(f"issued {len(result.issued)} secrets in {issued_s:.1f} s ({len(result.issued) / issued_s:.0f}/s); "
               f"password file {(accounts / 'devices.passwd').stat().st_size / 2**20:.1f} MiB, ACL "
               f"{(accounts / 'devices.acl').stat().st_size / 2**20:.1f} MiB")
        assert len(read_passwd(accounts / "devices.passwd")) == len(devices)
        started = time.perf_counter()
        with broker:
            status(f"broker accepting after {time.perf_counter() - started:.2f} s; RSS "
                   f"{rss_bytes(broker.pid) / 2**20:.0f} MiB with {len(devices)} accounts and "
                   f"{args.gateways * args.behind} gateway-routed devices in the ACL")
            names = devices[: args.connect]
            failures: list[str] = []
            clients: list[Client] = []
            lock = threading.Lock()

            def connect(chunk: list[str]) -> None:
                for n, name in enumerate(chunk):
                    c = Client(broker.device_port, name, result.issued[name], ca=broker.pki.ca)
                    outcome = c.connect()
                    with lock:
                        if not outcome.connected:
                            failures.append(f"{name}: {outcome.reason}")
                    if n < args.keep // args.threads:
                        with lock:
                            clients.append(c)  # kept open to see what a connected device costs the broker
                    else:
                        c.close()

            chunks = [names[i:: args.threads] for i in range(args.threads)]
            cpu_before = cpu_seconds(broker.pid)
            started = time.perf_counter()
            threads = [threading.Thread(target=connect, args=(chunk,)) for chunk in chunks]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(broker.pid) - cpu_before
            status(f"{len(names)} TLS connects with password check in {elapsed:.1f} s = {len(names) / elapsed:.0f}/s "
                   f"({args.threads} client threads on the same machine); {len(failures)} failed {failures[:3]}")
            status(f"broker CPU: {cpu:.2f} s = {1000 * cpu / len(names):.2f} ms per TLS connect + password check "
                   f"-> one broker core accepts at most ~{len(names) / cpu:.0f} connects/s")
            status(f"broker RSS with {len(clients)} connected devices: {rss_bytes(broker.pid) / 2**20:.0f} MiB")
            for c in clients:
                c.close()


if __name__ == "__main__":
    main()
