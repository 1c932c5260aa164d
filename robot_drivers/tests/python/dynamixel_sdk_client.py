"""Independent client for the Dynamixel emulator: ROBOTIS' own Python SDK
(dynamixel-sdk from PyPI) pings, writes, reads and sync-reads the emulated
servos. Prints one JSON line; exit 0 when every check passed.
Usage: dynamixel_sdk_client.py PORT"""
import json
import sys
import time

from dynamixel_sdk import COMM_SUCCESS, GroupSyncRead, GroupSyncWrite, PacketHandler, PortHandler


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
    time.sleep(0.2)
    position, comm, error = packet.read4ByteTxRx(port, 1, 132)
    result["read"] = [position, comm == COMM_SUCCESS]
    reader = GroupSyncRead(port, packet, 132, 4)
    reader.addParam(1)
    reader.addParam(2)
    comm = reader.txRxPacket()
    result["sync_read"] = [reader.getData(1, 132, 4), reader.getData(2, 132, 4), comm == COMM_SUCCESS]
    mode, comm, error = packet.read1ByteTxRx(port, 2, 11)
    result["operating_mode"] = mode
    ok = (
        result["ping"] == [1020, True, 0]
        and result["write"]
        and result["sync_write"]
        and result["read"] == [2300, True]
        and result["sync_read"] == [2300, 1900, True]
        and mode == 3
    )
    result["ok"] = ok
    print(json.dumps(result))
    port.closePort()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
