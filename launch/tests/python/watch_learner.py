"""Independent ROS 2 peer for `rrl practice --learner node`: an rclpy node
that reads the learner node's acknowledgements and actor weights on the
robot's namespace, as any node on the domain could. Prints `listening`
once it has subscribed (the test starts practice only then: a short run
could end before a late peer discovers it), then one JSON line; exit 0
once it has seen both carry learner updates.
Usage: watch_learner.py NAMESPACE WIRE_VERSION"""
import json
import struct
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray


# Every message of rrl's wire format opens with b"rl", the format's version
# (u16, ros_edge::wire::VERSION, given by the test) and the message kind (u8).
MAGIC, HEADER = b"rl", 5
KIND_ACKS, KIND_WEIGHTS = 4, 5


def body(data, kind, version, seen):
    """The message after its header, or None (counted) if the header is not the one expected."""
    if len(data) < HEADER or data[:2] != MAGIC or struct.unpack_from("<H", data, 2)[0] != version or data[4] != kind:
        seen["bad_headers"] += 1
        return None
    return data[HEADER:]


def main() -> int:
    namespace, version = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = Node("learner_watcher")
    seen = {"ack_updates": [], "weight_updates": [], "acked_items": 0, "bad_headers": 0}

    def on_ack(message):
        data = body(bytes(message.data), KIND_ACKS, version, seen)
        if data is None:
            return
        # [learner incarnation u64][updates u64][actors u32] then [actor id u64][next expected u64] each
        _, updates, actors = struct.unpack_from("<QQI", data, 0)
        seen["ack_updates"].append(updates)
        for i in range(actors):
            _, next_expected = struct.unpack_from("<QQ", data, 20 + 16 * i)
            seen["acked_items"] = max(seen["acked_items"], next_expected)

    def on_weights(message):
        data = body(bytes(message.data[:HEADER + 12]), KIND_WEIGHTS, version, seen)
        if data is None:
            return
        # [updates u64][tensors u32] then each tensor's shape and f32 values
        updates, tensors = struct.unpack_from("<QI", data, 0)
        seen["weight_updates"].append((updates, tensors))

    node.create_subscription(UInt8MultiArray, f"/{namespace}/learner/acks", on_ack, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    weights_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    node.create_subscription(UInt8MultiArray, f"/{namespace}/learner/weights", on_weights, weights_qos)
    print("listening", flush=True)
    end = time.monotonic() + 120
    ok = False
    while time.monotonic() < end and not ok:
        rclpy.spin_once(node, timeout_sec=0.05)
        ok = (any(u >= 20 for u in seen["ack_updates"]) and seen["acked_items"] > 0
              and any(u >= 20 and t > 0 for u, t in seen["weight_updates"]))
    print(json.dumps({
        "ok": ok,
        "acks": len(seen["ack_updates"]),
        "max_ack_updates": max(seen["ack_updates"], default=0),
        "acked_items": seen["acked_items"],
        "weights": len(seen["weight_updates"]),
        "max_weight_updates": max((u for u, _ in seen["weight_updates"]), default=0),
        "weight_tensors": max((t for _, t in seen["weight_updates"]), default=0),
        "bad_headers": seen["bad_headers"],
    }))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
