"""Independent client for the Dynamixel emulator: ROBOTIS' own Python SDK
(dynamixel-sdk from PyPI) pings, writes, reads, sync-reads and bulk-reads the emulated
servos. Prints one JSON line; exit 0 when every check passed.
Usage: dynamixel_sdk_client.py PORT"""
import json
import sys
import time

from dynamixel_sdk import COMM_SUCCESS, GroupBulkRead, GroupSyncRead, GroupSyncWrite, PacketHandler, PortHandler


def main() -> int:
    port = PortHandler(sys.argv[1])
    assert port.openPort(), "open"
    assert port.setBaudRate(1000000), "baud"
    packet = PacketHandler(2.0)
    result = {}
    model, comm, error = packet.ping(port, 1)
    result["ping"] = [model, comm == COMM_SUCCESS, error]
    for dxl in (1, 2):
        comm, error = packet.write1ByteTxRx(port, dxl, 64, 1)
        assert comm == COMM_SUCCESS and error == 0, packet.getTxRxResult(comm)
    comm, error = packet.write4ByteTxRx(port, 1, 116, 2300)
    result["write"] = comm == COMM_SUCCESS
    writer = GroupSyncWrite(port, packet, 116, 4)
    writer.addParam(2, list((1900).to_bytes(4, "little")))
    result["sync_write"] = writer.txPacket() == COMM_SUCCESS
    time.sleep(0.4)
    position, comm, error = packet.read4ByteTxRx(port, 1, 132)
    result["read"] = [position, comm == COMM_SUCCESS]
    reader = GroupSyncRead(port, packet, 132, 4)
    reader.addParam(1)
    reader.addParam(2)
    comm = reader.txRxPacket()
    result["sync_read"] = [reader.getData(1, 132, 4), reader.getData(2, 132, 4), comm == COMM_SUCCESS]
    mode, comm, error = packet.read1ByteTxRx(port, 2, 11)
    result["operating_mode"] = mode
    # Bulk read: a different register from each servo in one exchange.
    bulk = GroupBulkRead(port, packet)
    assert bulk.addParam(1, 132, 4) and bulk.addParam(2, 11, 1)
    comm = bulk.txRxPacket()
    result["bulk_read"] = [bulk.getData(1, 132, 4), bulk.getData(2, 11, 1), comm == COMM_SUCCESS]
    # At rest on their goals: no velocity, no current.
    velocity, comm, error = packet.read4ByteTxRx(port, 1, 128)
    current, comm, error = packet.read2ByteTxRx(port, 1, 126)
    result["at_rest"] = [velocity, current]
    ok = (
        result["ping"] == [1020, True, 0]
        and result["write"]
        and result["sync_write"]
        and result["read"] == [2300, True]
        and result["sync_read"] == [2300, 1900, True]
        and mode == 3
        and result["bulk_read"] == [2300, 3, True]
        and result["at_rest"] == [0, 0]
    )
    result["ok"] = ok
    print(json.dumps(result))
    port.closePort()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
