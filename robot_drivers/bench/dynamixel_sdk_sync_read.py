"""Peer for `rrl bench serial`: ROBOTIS' Python SDK sync-reads the present
position of servos 1..N, ROUNDS times, against the same emulator.
Prints one JSON line. Usage: dynamixel_sdk_sync_read.py PORT SERVOS ROUNDS"""
import json
import sys
import time

from dynamixel_sdk import COMM_SUCCESS, GroupSyncRead, PacketHandler, PortHandler


def main() -> int:
    path, servos, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    port = PortHandler(path)
    port.openPort()
    port.setBaudRate(1000000)
    packet = PacketHandler(2.0)
    reader = GroupSyncRead(port, packet, 132, 4)
    for dxl in range(1, servos + 1):
        reader.addParam(dxl)
    times, failures = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        if reader.txRxPacket() != COMM_SUCCESS:
            failures += 1
        times.append(time.perf_counter() - start)
    times.sort()
    mean = sum(times) / len(times)
    print(json.dumps({"impl": "dynamixel-sdk", "rounds": rounds, "failures": failures, "mean_us": mean * 1e6, "p99_us": times[int(0.99 * (len(times) - 1))] * 1e6, "loop_hz": 1.0 / mean}))
    port.closePort()
    return 0


if __name__ == "__main__":
    sys.exit(main())
