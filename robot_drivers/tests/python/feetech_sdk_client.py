"""Independent client for the Feetech emulator: Feetech's own Python SDK
(feetech-servo-sdk, module scservo_sdk) pings, writes, reads and sync-reads
emulated STS3215 servos. Prints one JSON line; exit 0 when every check
passed. Usage: feetech_sdk_client.py PORT"""
import json
import sys
import time

from scservo_sdk import COMM_SUCCESS, GroupSyncRead, GroupSyncWrite, PacketHandler, PortHandler


def main() -> int:
    port = PortHandler(sys.argv[1])
    assert port.openPort(), "open"
    assert port.setBaudRate(1000000), "baud"
    packet = PacketHandler(0)  # STS: little-endian registers
    result = {}
    model, comm, error = packet.ping(port, 1)
    result["ping"] = [model, comm == COMM_SUCCESS, error]
    for sid in (1, 2):
        comm, error = packet.write1ByteTxRx(port, sid, 40, 1)
        assert comm == COMM_SUCCESS and error == 0, packet.getTxRxResult(comm)
    comm, error = packet.write2ByteTxRx(port, 1, 42, 2200)
    result["write"] = comm == COMM_SUCCESS
    writer = GroupSyncWrite(port, packet, 42, 2)
    writer.addParam(2, [1900 & 0xFF, 1900 >> 8])
    result["sync_write"] = writer.txPacket() == COMM_SUCCESS
    time.sleep(0.4)
    position, comm, error = packet.read2ByteTxRx(port, 1, 56)
    result["read"] = [position, comm == COMM_SUCCESS]
    reader = GroupSyncRead(port, packet, 56, 2)
    reader.addParam(1)
    reader.addParam(2)
    comm = reader.txRxPacket()
    result["sync_read"] = [reader.getData(1, 56, 2), reader.getData(2, 56, 2), comm == COMM_SUCCESS]
    ok = (
        result["ping"] == [777, True, 0]
        and result["write"]
        and result["sync_write"]
        and result["read"] == [2200, True]
        and result["sync_read"] == [2200, 1900, True]
    )
    result["ok"] = ok
    print(json.dumps(result))
    port.closePort()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
